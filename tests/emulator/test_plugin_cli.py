"""The ``fake_customerio`` pytest fixture (in-process and in a fresh pytest run) and ``cioguard emulator``."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from customerio import CustomerIO

from cioguard.testing import FakeCustomerIO
from cioguard.testing.certs import make_trusting

CHILD_ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def test_fixture_is_available_in_this_session(fake_customerio: FakeCustomerIO) -> None:
    assert fake_customerio.url.startswith("https://127.0.0.1:")
    fake_customerio.client().track("u1", "signed_up")
    assert [e.name for e in fake_customerio.events] == ["signed_up"]


def test_http_fixture(fake_customerio_http: FakeCustomerIO) -> None:
    assert fake_customerio_http.url.startswith("http://")


@pytest.mark.slow
def test_fixture_reaches_other_suites_through_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            def test_uses_fixture(fake_customerio):
                fake_customerio.client().identify("u1", plan="pro")
                assert fake_customerio.person("u1").attributes == {"plan": "pro"}

            def test_fresh_per_test(fake_customerio):
                assert fake_customerio.people == {}

            def test_with_cioguard_instrumented(fake_customerio):
                import cioguard
                from customerio import CustomerIO

                cioguard.instrument(track_url=fake_customerio.track_url, pitfalls="off")
                try:
                    CustomerIO("site-id", "track-key").track("u1", "signed_up", data={})
                    assert cioguard.flush(timeout=5)
                    assert [e.name for e in fake_customerio.events] == ["signed_up"]
                finally:
                    cioguard.uninstrument()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=CHILD_ENV,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_the_sdk_and_stops_cleanly(stop_signal: signal.Signals, tmp_path: Path) -> None:
    record = tmp_path / "state.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cioguard",
            "emulator",
            "--https",
            "--site-id",
            "s1",
            "--api-key",
            "k1",
            "--app-key",
            "a1",
            "--latency",
            "0.01",
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        url = re.search(r"listening on (https://127\.0\.0\.1:(\d+))", lines[0])
        bundle = re.search(r"CA bundle: (\S+)", "".join(lines))
        assert url is not None, lines
        assert bundle is not None, lines
        assert "'s1'" in lines[1]
        assert "'a1'" in lines[2]
        cio = make_trusting(CustomerIO("s1", "k1", host="127.0.0.1", port=int(url.group(2))), bundle.group(1))
        assert cio.track("u1", "signed_up").status_code == 200
        cio.close()
        # What arrived, for a person checking by hand: served as JSON and logged one line per request.
        context = ssl.create_default_context(cafile=bundle.group(1))
        with urllib.request.urlopen(f"{url.group(1)}/__emulator/state", context=context, timeout=5) as reply:
            state = json.loads(reply.read())
        assert [e["name"] for e in state["people"]["u1"]["events"]] == ["signed_up"]
        assert state["counts"]["requests"] == 1
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, err
    assert "stopped after 1 requests" in out
    assert re.search(r"^POST /api/v1/customers/u1/events -> 200  ops=1  [\d.]+ ms$", out, re.M), out
    assert "k1" not in out  # the request log (after the header lines read above) shows no credentials
    assert not os.path.exists(bundle.group(1))
    written = json.loads(record.read_text())
    assert written["counts"]["events"] == 1
    assert [e["name"] for e in written["people"]["u1"]["events"]] == ["signed_up"]


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from cioguard.testing.cli import main

    assert main(["--latency", "-1"]) == 2
    assert "--latency" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--port", "notanumber"])
    with FakeCustomerIO(https=False) as busy:
        assert main(["--port", str(busy.port)]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_cli_plain_http_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from cioguard.testing import cli

    # the signal handlers need the main thread: send ourselves SIGINT once main() has installed its own
    pytest_handler = signal.getsignal(signal.SIGINT)

    def interrupt() -> None:
        deadline = time.monotonic() + 5
        while signal.getsignal(signal.SIGINT) is pytest_handler and time.monotonic() < deadline:
            time.sleep(0.01)
        if signal.getsignal(signal.SIGINT) is not pytest_handler:
            os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    started = time.monotonic()
    assert cli.main(["--sink"]) == 0
    killer.join()
    assert signal.getsignal(signal.SIGINT) is pytest_handler
    out = capsys.readouterr().out
    assert "listening on http://127.0.0.1:" in out
    assert "needs --https" in out
    assert time.monotonic() - started < 5
