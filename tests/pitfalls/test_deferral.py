"""Pitfall rules on the sender in "warn" mode: when they may wait, and what the user still sees.

Under pytest every test records warnings (``catch_warnings(record=True)``) with
``filterwarnings=error``, so in-process calls keep their rules on the caller; the deferred path is
driven in a real child process, as an application runs it (Python's default filters).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
import warnings

import pytest

import cioguard
from cioguard.operations.model import Call
from cioguard.pitfalls.deferral import DeferralGate, filters_allow_deferral


def _original_show() -> object:
    """The warnings module's own ``_showwarnmsg_impl`` (pytest has replaced this module's copy)."""
    spec = importlib.util.find_spec("warnings")
    assert spec is not None
    assert spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return fresh._showwarnmsg_impl


_ORIGINAL_SHOW = _original_show()
_DEFAULTS = [
    ("default", None, DeprecationWarning, "__main__", 0),
    ("ignore", None, DeprecationWarning, None, 0),
    ("ignore", None, ImportWarning, None, 0),
]


def test_python_defaults_and_default_or_always_filters_let_rules_wait() -> None:
    assert getattr(_ORIGINAL_SHOW, "__module__", None) == "warnings"  # what record=True replaces
    assert filters_allow_deferral(_DEFAULTS, _ORIGINAL_SHOW)
    assert filters_allow_deferral([("default", None, Warning, None, 0), *_DEFAULTS], _ORIGINAL_SHOW)
    assert filters_allow_deferral([("always", None, cioguard.PitfallWarning, None, 0)], _ORIGINAL_SHOW)
    assert filters_allow_deferral([("error", None, DeprecationWarning, None, 0)], _ORIGINAL_SHOW)


@pytest.mark.parametrize(
    "entry",
    [
        ("error", None, Warning, None, 0),  # -W error, pytest filterwarnings=error
        ("error", None, cioguard.PitfallWarning, None, 0),  # -W error::cioguard.PitfallWarning
        ("error", None, cioguard.MillisecondTimestampWarning, None, 0),  # one code only
        ("ignore", None, UserWarning, None, 0),  # a catch_warnings block hiding them
        ("error", re.compile("CIO002"), Warning, None, 0),  # conservative: any message
    ],
)
def test_filters_that_raise_or_hide_keep_rules_on_the_caller(entry: tuple[object, ...]) -> None:
    assert not filters_allow_deferral([entry, *_DEFAULTS], _ORIGINAL_SHOW)


def test_recording_warnings_keeps_rules_on_the_caller() -> None:
    log: list[object] = []
    assert not filters_allow_deferral(_DEFAULTS, log.append)  # catch_warnings(record=True)
    with warnings.catch_warnings(record=True):
        assert not DeferralGate().open()


def test_the_gate_follows_filter_changes() -> None:
    gate = DeferralGate()
    with warnings.catch_warnings():
        warnings._showwarnmsg_impl = _ORIGINAL_SHOW  # type: ignore[attr-defined]  # not recording
        warnings.resetwarnings()
        assert gate.open()
        warnings.simplefilter("error", cioguard.PitfallWarning)
        assert not gate.open()
        warnings.simplefilter("default")
        assert not gate.open()  # the error entry is still there, behind
        warnings.resetwarnings()
        assert gate.open()


_APP = textwrap.dedent(
    """
    import threading, warnings
    from prometheus_client import CollectorRegistry
    import cioguard
    from cioguard.instrumentation.instrumentor import active_runtime
    from cioguard.testing import FakeCustomerIO

    shown = []
    original = warnings.showwarning
    def show(message, category, filename, lineno, file=None, line=None):
        shown.append((category.__name__, filename, lineno, threading.current_thread().name))
    warnings.showwarning = show  # logging.captureWarnings does the same

    DATA = {"placed_at": "2024-05-01T10:20:30Z", "note": None}
    with FakeCustomerIO() as fake, fake.trust():
        registry = CollectorRegistry()
        cioguard.instrument(track_url=fake.track_url, api_url=fake.api_url, registry=registry)
        client = fake.client()
        client.identify("u1", email="u1@example.com")
        try:
            for _ in range(3):
                client.track("u1", "order_placed", data=DATA)  # LINE-A
            client.track("u1", "order_placed", data=DATA)  # LINE-B
            print("returned")
        except cioguard.PitfallWarning as exc:
            print("raised", type(exc).__name__)
        assert cioguard.flush(timeout=10)  # the sender has warned before the filters change
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.track("u1", "order_placed", data=DATA)  # LINE-C
        assert cioguard.flush(timeout=10)
        print("events", len(fake.events))
        active_runtime().pitfalls.flush_counts()
        print("CIO002", registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO002"}))
    for entry in shown:
        print("shown", *entry)
    """
)


def _run(tmp_path: object, *options: str) -> tuple[list[str], dict[str, int]]:
    script = tmp_path / "app.py"  # type: ignore[operator]
    script.write_text(_APP)
    lines = {
        tag: number
        for number, text in enumerate(_APP.splitlines(), start=1)
        for tag in ("LINE-A", "LINE-B", "LINE-C")
        if tag in text
    }
    result = subprocess.run(
        [sys.executable, *options, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines(), lines


def test_warn_mode_warns_from_the_sender_at_the_users_line_once_per_line(tmp_path: object) -> None:
    out, lines = _run(tmp_path)
    assert "returned" in out
    assert "events 5" in out  # five tracks: a warning, not a refusal
    shown = [line.split() for line in out if line.startswith("shown ")]
    timestamp = [entry for entry in shown if entry[1] == "MillisecondTimestampWarning"]
    # Once per call site (Python's default filter), at the user's file and line, never cioguard's;
    # the call inside the "ignore" block is never shown.
    assert [(entry[2].endswith("app.py"), int(entry[3])) for entry in timestamp] == [
        (True, lines["LINE-A"]),
        (True, lines["LINE-B"]),
    ]
    assert all(entry[4] != "MainThread" for entry in timestamp)  # issued by the sender
    assert "CIO002 5.0" in out  # every occurrence counted, shown or not


def test_error_filter_raises_at_the_call_and_queues_nothing(tmp_path: object) -> None:
    out, _ = _run(tmp_path, "-W", "error::cioguard.PitfallWarning")
    assert "raised MillisecondTimestampWarning" in out
    assert "returned" not in out
    assert "events 1" in out  # the call inside the "ignore" block only


_ORDER_APP = textwrap.dedent(
    """
    import warnings
    import cioguard
    from cioguard.testing import FakeCustomerIO

    with FakeCustomerIO() as fake, fake.trust():
        cioguard.instrument(track_url=fake.track_url, api_url=fake.api_url)
        client = fake.client()
        for n in range(200):
            client.identify(f"u{n}", email=f"u{n}@example.com")  # checked later, on the sender
        with warnings.catch_warnings(record=True) as record:
            client.track("u199", "order_placed", data={})  # checked here: the identifies first
        print("recorded", sorted({w.category.__name__ for w in record}))
        assert cioguard.flush(timeout=10)
    """
)


def test_rules_back_on_the_caller_see_earlier_calls_first(tmp_path: object) -> None:
    script = tmp_path / "order.py"  # type: ignore[operator]
    script.write_text(_ORDER_APP)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "recorded []" in result.stdout  # no CIO003 "track before identify" for u199


def test_call_site_is_one_shared_tuple_per_line() -> None:
    from cioguard.pitfalls.location import call_site

    def library_call() -> object:  # stands in for the wrapper: call_site(1) starts above it
        return call_site(1)

    line = sys._getframe().f_lineno + 1
    sites = [library_call() for _ in range(3)]
    other = library_call()
    assert sites[0] is sites[1] is sites[2]  # cached: nothing allocated per call
    assert sites[0][:3] == (__file__, line, __name__)  # type: ignore[index]
    assert other[1] == line + 1  # type: ignore[index]


_SPAN_APP = textwrap.dedent(
    """
    import cioguard
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
    from cioguard.testing import FakeCustomerIO

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with FakeCustomerIO() as fake, fake.trust():
        cioguard.instrument(track_url=fake.track_url, api_url=fake.api_url, tracer_provider=provider)
        client = fake.client()
        client.identify("u1", email="u1@example.com")
        client.track("u1", "order_placed", data={"placed_at": "2024-05-01T10:20:30Z"})
        assert cioguard.flush(timeout=10)
    for span in exporter.get_finished_spans():
        if span.kind is SpanKind.PRODUCER:
            codes = [event.attributes["customerio.pitfall.code"] for event in span.events]
            print("producer", span.name, codes)
    """
)


def test_findings_made_on_the_sender_are_events_of_the_producer_span(tmp_path: object) -> None:
    script = tmp_path / "spans.py"  # type: ignore[operator]
    script.write_text(_SPAN_APP)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "producer customerio track ['CIO002']" in result.stdout
    assert "producer customerio identify []" in result.stdout


class _Rules:
    """Stands in for the pitfall engine: counts the calls it is asked to check."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def check_call(self, call: Call) -> tuple[list[object], Call]:
        self.checked.append(call.name)
        return [], call

    def check_fields(self, method: str, customer_id: object, name: str, *rest: object) -> list[object]:
        self.checked.append(name)  # a queued tuple's check (no Call made)
        return []


def test_a_long_backlog_hands_the_gil_over_between_short_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    from cioguard.delivery import slices
    from cioguard.pitfalls import deferral

    ticks = iter(range(0, 10_000_000, 40))  # every clock read: 40 µs later
    handoffs: list[float] = []
    monkeypatch.setattr(deferral, "_now", lambda: next(ticks) / 1e6)
    monkeypatch.setattr(deferral, "_handoff", handoffs.append)
    monkeypatch.setattr(slices, "_pressed_until", 0.0)  # no caller under backpressure
    rules, backlog = _Rules(), deferral.Backlog()
    for n in range(100):
        backlog.waiting.append((rules, "track", "u1", f"e{n}", {}, None, None, None, None, None))
    backlog.drain()
    assert rules.checked == [f"e{n}" for n in range(100)]  # all of them, in call order
    assert not backlog.waiting
    # A slice is 100 µs and each check reads the clock once (40 µs here): a hand-off every 2-3 checks.
    assert 30 <= len(handoffs) <= 60
    assert set(handoffs) == {0}  # time.sleep(0): release the GIL, nothing else


def test_under_backpressure_a_backlog_runs_in_longer_stretches(monkeypatch: pytest.MonkeyPatch) -> None:
    from cioguard.delivery import slices
    from cioguard.pitfalls import deferral

    ticks = iter(range(0, 10_000_000, 40))  # every clock read: 40 µs later
    handoffs: list[float] = []
    monkeypatch.setattr(deferral, "_now", lambda: next(ticks) / 1e6)
    monkeypatch.setattr(deferral, "_handoff", handoffs.append)
    monkeypatch.setattr(slices, "_pressed_until", 1.0)  # callers slowed until t = 1 s
    rules, backlog = _Rules(), deferral.Backlog()
    for n in range(100):
        backlog.waiting.append((rules, "track", "u1", f"e{n}", {}, None, None, None, None, None))
    backlog.drain()
    assert rules.checked == [f"e{n}" for n in range(100)]
    # 2 ms stretches of 40 µs checks: a hand-off about every 50 checks, not every 2-3.
    assert 1 <= len(handoffs) <= 3
