"""CIO014 for an ``inf`` or a ``UUID`` behind an event's JSON, found by the sender's rules.

The pure rule is tested here; the whole path (warn mode in a real child process: the call returns,
the event is delivered with ``null`` / the UUID's text, one warning at the user's line from the
sender; ``-W error`` and ``pitfalls="off"`` raise ``TypeError`` at the call) below.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import orjson
import pytest

from cioguard.pitfalls.values import UNSENDABLE_MESSAGE, needs_look, unsendable_finding


def _body(data: dict[str, object]) -> bytes:
    return orjson.dumps({"id": "0" * 26, "attributes": data})


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"total": math.inf}, 'data["total"]'),
        ({"items": [{"price": 1.5}, {"price": -math.inf}]}, 'data["items"][1]["price"]'),
        ({"ref": uuid.UUID(int=7)}, 'data["ref"]'),
    ],
)
def test_an_inf_or_a_uuid_is_found_with_its_key_path(data: dict[str, object], path: str) -> None:
    finding = unsendable_finding(data, _body(data))
    assert finding is not None
    assert finding.code == "CIO014"
    assert finding.message == UNSENDABLE_MESSAGE  # constant: once per line
    assert finding.detail == path  # the place, never the value


@pytest.mark.parametrize(
    "data",
    [
        {"coupon": None, "nested": {"x": None}, "list": [None, 1.5]},  # real None values
        {"score": math.nan},  # the SDK itself sends nan as null
        {"ref": str(uuid.UUID(int=7))},  # a UUID's text is a string like any other
        {"plan": "pro", "amount": 42},
    ],
)
def test_ordinary_data_has_no_finding(data: dict[str, object]) -> None:
    assert unsendable_finding(data, _body(data)) is None


def test_only_a_null_or_uuid_shaped_text_sends_the_sender_through_the_walk() -> None:
    assert not needs_look(_body({"plan": "pro", "placed_at": "2024-05-01T10:20:30Z"}))
    assert needs_look(_body({"x": None}))
    assert needs_look(_body({"x": str(uuid.uuid4())}))


_APP = textwrap.dedent(
    """
    import math, sys, threading, uuid, warnings
    import cioguard
    from cioguard.testing import FakeCustomerIO

    shown = []
    def show(message, category, filename, lineno, file=None, line=None):
        shown.append((str(message)[:6], filename, lineno, threading.current_thread().name))
    warnings.showwarning = show

    with FakeCustomerIO() as fake, fake.trust():
        cioguard.instrument(track_url=fake.track_url, api_url=fake.api_url, pitfalls=sys.argv[1])
        client = fake.client()
        client.identify("u1", email="u1@example.com")
        for n in range(3):
            data = {"total": math.inf, "ref": uuid.UUID(int=n), "coupon": None}
            try:
                client.track("u1", "order_placed", data=data)  # LINE-A
                print("returned")
            except TypeError as exc:
                print("raised", str(exc).split(":")[0])
        assert cioguard.flush(timeout=10)
        for event in fake.events:
            print("event", event.data["total"], event.data["ref"], event.data["coupon"])
    for entry in shown:
        print("shown", *entry)
    """
)


def _run(tmp_path: Path, pitfalls: str, *options: str) -> tuple[list[str], int]:
    script = tmp_path / "app.py"
    script.write_text(_APP)
    line = next(n for n, text in enumerate(_APP.splitlines(), start=1) if "LINE-A" in text)
    result = subprocess.run(
        [sys.executable, *options, str(script), pitfalls],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines(), line


def test_warn_mode_delivers_the_event_and_warns_once_at_the_users_line(tmp_path: Path) -> None:
    out, line = _run(tmp_path, "warn")
    assert out.count("returned") == 3
    assert out.count("event None 00000000-0000-0000-0000-000000000001 None") == 1  # null, text, null
    assert sum(entry.startswith("event ") for entry in out) == 3
    shown = [entry.split() for entry in out if entry.startswith("shown CIO014")]
    assert len(shown) == 1  # one message per (code, line)
    assert shown[0][2].endswith("app.py")
    assert int(shown[0][3]) == line
    assert shown[0][4] != "MainThread"  # found by the sender's rules


@pytest.mark.parametrize(
    ("pitfalls", "options"), [("warn", ("-W", "error::cioguard.PitfallWarning")), ("off", ())]
)
def test_rules_on_the_caller_raise_type_error_there_and_queue_nothing(
    tmp_path: Path, pitfalls: str, options: tuple[str, ...]
) -> None:
    out, _ = _run(tmp_path, pitfalls, *options)
    assert out.count('raised data["total"]') == 3
    assert not any(entry.startswith(("returned", "event ")) for entry in out)


def test_under_pytest_warns_the_caller_reports_cio014_and_sends_the_event() -> None:
    """Recording filters (pytest.warns) keep the rules on the caller: the same CIO014 and bytes as
    the sender's rules give, never the TypeError kept for ``-W error`` (it used to raise here)."""
    import cioguard
    from cioguard.testing import FakeCustomerIO

    with FakeCustomerIO() as fake, fake.trust():
        cioguard.instrument(track_url=fake.track_url, disabled_pitfalls=["CIO003"])
        try:
            client = fake.client()
            with pytest.warns(cioguard.PayloadLimitWarning, match="CIO014") as record:
                client.track("u1", "scored", data={"ratio": math.inf, "ref": uuid.UUID(int=7)})
            assert [w.filename for w in record if getattr(w.category, "code", "") == "CIO014"] == [__file__]
            assert cioguard.flush(timeout=10)
        finally:
            cioguard.uninstrument(timeout=5)
        [event] = fake.events
        assert event.data == {"ratio": None, "ref": "00000000-0000-0000-0000-000000000007"}
