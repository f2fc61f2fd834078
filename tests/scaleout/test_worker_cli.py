"""``cioguard worker`` as a user meets it: unreachable Redis, help text, a Redis without persistence."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import pytest
from scaleout_helpers import RedisServer, child_env, free_port

from cioguard.scaleout.persistence import describe_risk, safe_redis_url, warn_if_not_durable
from cioguard.scaleout.worker import _parser, main


def test_unreachable_redis_fails_fast_naming_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    assert main(["--redis", url]) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"cannot reach Redis at redis://127.0.0.1:{url.rsplit(':', 1)[1]}" in err
    assert "secret" not in err
    assert "--wait-for-redis" in err


def test_missing_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CIOGUARD_QUEUE_URL", raising=False)
    assert main([]) == 2
    assert "--redis URL" in capsys.readouterr().err


def test_every_option_has_help_and_no_rst_markup() -> None:
    parser = _parser()
    text = parser.format_help()
    assert "``" not in text
    assert ":class:" not in text
    assert ":mod:" not in text
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help text"
    assert "(default: 600.0)" in text  # defaults are shown
    assert "(default: None)" not in text  # … once, and only where there is one


def test_describe_risk() -> None:
    assert describe_risk({"aof_enabled": 1}, now=1000.0) is None
    never = describe_risk({"aof_enabled": 0, "rdb_last_save_time": 0}, now=1000.0)
    assert never is not None
    assert "everything queued" in never
    old = describe_risk(
        {"aof_enabled": 0, "rdb_last_save_time": 400, "rdb_changes_since_last_save": 7}, 1000.0
    )
    assert old is not None
    assert "600 s old with 7 write(s)" in old


def test_safe_redis_url() -> None:
    assert safe_redis_url("redis://u:pw@h:1/0") == "redis://h:1/0"
    assert safe_redis_url("redis://h:1/0") == "redis://h:1/0"
    assert safe_redis_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


@pytest.mark.slow
def test_warns_once_when_redis_has_no_aof(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    durable = redis_server.client()
    try:
        assert warn_if_not_durable(durable, redis_server.url) is None  # the session server runs AOF
    finally:
        durable.close()
    volatile = RedisServer(appendonly=False)
    volatile.start()
    client = volatile.client()
    try:
        with caplog.at_level(logging.WARNING, logger="cioguard.scaleout"):
            first = warn_if_not_durable(client, volatile.url)
            second = warn_if_not_durable(client, volatile.url)
        assert first is not None
        assert second is not None  # still at risk; the snapshot's age in the text may have moved
        warnings = [r for r in caplog.records if "is not durable" in r.getMessage()]
        assert len(warnings) == 1
        assert "appendonly yes" in warnings[0].getMessage()
        # The worker says it at start-up, as a user running it sees it.
        entry = "import sys; from cioguard.scaleout.worker import main; sys.exit(main(sys.argv[1:]))"
        proc = subprocess.Popen(
            [sys.executable, "-c", entry, "--redis", volatile.url, "--partitions", "1"],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert "connected to" in proc.stdout.readline()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        assert proc.returncode == 0
        assert "is not durable" in err
    finally:
        client.close()
        volatile.cleanup()
