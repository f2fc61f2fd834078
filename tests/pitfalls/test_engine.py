"""PitfallEngine behaviour: emit at the user's line, modes, disabled codes, filters, counting, report."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
from pitfall_helpers import CountingRecorder, FakeClock, codes

from cioguard.operations.model import Call
from cioguard.pitfalls import (
    CATEGORIES,
    EmailAsIdWarning,
    Finding,
    MillisecondTimestampWarning,
    PitfallConfig,
    PitfallEngine,
    PitfallWarning,
    RateLimitWarning,
    TrackBeforeIdentifyWarning,
)

EMAIL_ID = Call("identify", customer_id="jane@example.com", data={"email": "jane@example.com"})


def _library_call(engine: PitfallEngine, call: Call) -> None:
    """Stands in for the instrumentation wrapper: one frame between the user and emit."""
    findings, _ = engine.check_call(call)
    engine.emit(findings, stacklevel=2)


def test_emit_points_at_the_callers_line(engine: PitfallEngine) -> None:
    line = sys._getframe().f_lineno + 2
    with pytest.warns(EmailAsIdWarning) as record:
        _library_call(engine, EMAIL_ID)
    assert record[0].filename == __file__
    assert record[0].lineno == line


def test_emit_stacklevel_one_is_the_emit_line(engine: PitfallEngine) -> None:
    findings, _ = engine.check_call(EMAIL_ID)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        engine.emit(findings, stacklevel=1)
    assert [(w.category, w.filename, w.lineno) for w in record] == [(EmailAsIdWarning, __file__, line)]


def test_messages_start_with_code_and_hide_personal_data(engine: PitfallEngine) -> None:
    findings, _ = engine.check_call(Call("identify", "jane.doe@example.com", data={"first_name": "J"}))
    findings += engine.check_call(Call("track", "jane.doe@example.com", "paid_4111 1111 1111 1111", {}))[0]
    assert {f.code for f in findings} >= {"CIO004", "CIO012"}
    for finding in findings:
        assert finding.message.startswith(finding.code + " ")
        assert "jane" not in finding.message
        assert "4111" not in finding.message
        assert isinstance(finding.warning(), CATEGORIES[finding.code])


def test_every_occurrence_is_counted_even_when_shown_once(
    engine: PitfallEngine, recorder: CountingRecorder
) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")  # Python shows a warning once per location
        for _ in range(3):
            _library_call(engine, EMAIL_ID)
    assert [w.category for w in record] == [EmailAsIdWarning]
    assert recorder.pitfalls == ["CIO004"]  # the first at once, repeats in bulk
    engine.flush_counts()
    assert recorder.pitfalls == ["CIO004"] * 3


def test_error_filter_turns_warning_into_exception(engine: PitfallEngine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PitfallWarning)
        with pytest.raises(EmailAsIdWarning, match=r"^CIO004 "):
            _library_call(engine, EMAIL_ID)


def test_ignore_filter_per_category_still_counts(engine: PitfallEngine, recorder: CountingRecorder) -> None:
    call = Call("track", "stranger", "order_completed", {"created_at": 1704067200000})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", TrackBeforeIdentifyWarning)
        _library_call(engine, call)
    assert [w.category for w in record] == [MillisecondTimestampWarning]
    assert sorted(recorder.pitfalls) == ["CIO002", "CIO003"]


def test_error_mode_raises_after_counting(clock: FakeClock, recorder: CountingRecorder) -> None:
    engine = PitfallEngine(PitfallConfig(mode="error"), recorder, clock=clock)
    findings, _ = engine.check_call(Call("track", "jane@example.com", "signed_up", {}))
    assert [f.code for f in findings] == ["CIO004", "CIO003"]
    with pytest.raises(EmailAsIdWarning):
        engine.emit(findings, stacklevel=1)
    assert recorder.pitfalls == ["CIO004", "CIO003"]


def test_off_mode_runs_nothing(clock: FakeClock, recorder: CountingRecorder) -> None:
    engine = PitfallEngine(PitfallConfig(mode="off"), recorder, clock=clock)
    assert codes(engine, EMAIL_ID) == []
    assert engine.check_response("app", 401) == []
    assert engine.check_client("app", key="f82ad78f695bd32f9d99") == []
    engine.emit([Finding("CIO004", "CIO004 x")], stacklevel=1)  # nothing shown, nothing counted
    engine.report([Finding("CIO011", "CIO011 x")])
    assert recorder.pitfalls == []


def test_bad_mode_is_a_validation_error() -> None:
    with pytest.raises(ValueError, match="warn, error or off"):
        PitfallEngine(PitfallConfig(mode="loud"))


def test_disabled_codes(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(disabled=frozenset({"CIO003", "CIO004"})), clock=clock)
    assert codes(engine, Call("track", "jane@example.com", "signed_up", {})) == []
    assert codes(engine, Call("identify", "user-1", data={})) == ["CIO005"]


def test_track_before_identify_switch(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(track_before_identify=False), clock=clock)
    assert codes(engine, Call("track", "user-1", "signed_up", {})) == []


def test_disabled_pii_code_falls_back_to_the_next_name_rule(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(disabled=frozenset({"CIO012", "CIO003"})), clock=clock)
    assert codes(engine, Call("track", "u1", "jane@example.com", {})) == ["CIO010"]


def test_from_options_reads_instrument_options() -> None:
    from cioguard.config import Options

    options = Options(pitfalls="error", disabled_pitfalls=frozenset({"CIO003"}), fix_timestamps=True)
    config = PitfallConfig.from_options(options)
    assert (config.mode, config.disabled, config.fix_timestamps) == ("error", frozenset({"CIO003"}), True)


def test_report_counts_logs_once_per_code_and_never_raises(
    clock: FakeClock, recorder: CountingRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    engine = PitfallEngine(PitfallConfig(mode="error"), recorder, clock=clock)
    caplog.set_level(logging.WARNING, logger="cioguard.pitfalls")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PitfallWarning)  # even then: no exception from report
        for _ in range(3):
            engine.report(engine.check_response("track", 429))
            clock.advance(10)
        clock.advance(60)
        engine.report(engine.check_response("track", 429))
    assert recorder.pitfalls == ["CIO011"] * 4
    assert [r.getMessage()[:6] for r in caplog.records] == ["CIO011"]
    assert "import in batches" in caplog.records[0].getMessage()  # the fix, once


def test_report_warns_with_stacklevel_one(engine: PitfallEngine) -> None:
    with pytest.warns(RateLimitWarning):
        engine.report(engine.check_response("app", 429))


def test_fix_timestamps_returns_a_fixed_copy(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(fix_timestamps=True), clock=clock)
    engine.check_call(Call("identify", "user-1", data={"email": "a@example.com"}))
    data = {"created_at": 1704067200000, "note": "x"}
    call = Call("track", "user-1", "order_completed", data=data, timestamp=1704067200123)
    findings, fixed = engine.check_call(call)
    assert [f.code for f in findings] == ["CIO002", "CIO002"]
    assert fixed is not call
    assert (fixed.timestamp, fixed.data) == (1704067200, {"created_at": 1704067200, "note": "x"})
    assert data == {"created_at": 1704067200000, "note": "x"}  # the caller's dict is untouched
    assert (fixed.method, fixed.customer_id, fixed.name) == ("track", "user-1", "order_completed")
    clean = Call("track", "user-1", "order_completed", data={"created_at": 1704067200})
    assert engine.check_call(clean) == ([], clean)


def test_fix_timestamps_off_keeps_the_call(engine: PitfallEngine) -> None:
    call = Call("identify", "user-1", data={"email": "a@example.com", "created_at": 1704067200000})
    findings, same = engine.check_call(call)
    assert [f.code for f in findings] == ["CIO002"]
    assert same is call


def test_rule_errors_never_reach_the_user(engine: PitfallEngine) -> None:
    # An unhashable id (a user bug the SDK itself reports) must not make the rules raise.
    call = Call("track", ["not", "an", "id"], "signed_up", {})
    assert engine.check_call(call) == ([], call)


def test_blocking_threshold(clock: FakeClock) -> None:
    from cioguard.scope import request_scope

    engine = PitfallEngine(PitfallConfig(blocking_threshold_seconds=0.05), clock=clock)
    with request_scope(method="GET", route="/"):
        assert engine.check_blocking("track", 0.01) == []
        assert [f.code for f in engine.check_blocking("track", 0.06)] == ["CIO007"]


def test_queue_nearly_full_sustained(engine: PitfallEngine, clock: FakeClock) -> None:
    found: list[str] = []
    for _ in range(30):  # 85 % full for 30 s, checked every second
        found += [f.code for f in engine.check_queue(8500, 10_000)]
        clock.advance(1)
    assert found == ["CIO011"]
    assert engine.check_queue(100, 10_000) == []  # drained: the episode ends


def test_queue_held_nearly_full_by_the_engines_watch(engine: PitfallEngine, clock: FakeClock) -> None:
    assert engine.check_queue_held(0.9, 9.5) == []  # not yet 10 s
    assert [f.code for f in engine.check_queue_held(0.9, 10.5)] == ["CIO011"]
    assert engine.check_queue_held(0.9, 11.5) == []  # once a minute at most
    clock.advance(61)
    assert [f.code for f in engine.check_queue_held(0.9, 72.0)] == ["CIO011"]


def test_queue_spikes_do_not_fire(engine: PitfallEngine, clock: FakeClock) -> None:
    found: list[str] = []
    for second in range(60):
        found += [f.code for f in engine.check_queue(9000 if second % 5 == 0 else 10, 10_000)]
        clock.advance(1)
    assert found == []


@pytest.mark.parametrize(
    "category",
    ["cioguard.PitfallWarning", "cioguard.pitfalls.PitfallWarning", "cioguard.pitfalls.EmailAsIdWarning"],
)
def test_command_line_error_filter(category: str) -> None:
    script = textwrap.dedent(
        """
        from cioguard.operations.model import Call
        from cioguard.pitfalls import PitfallEngine
        engine = PitfallEngine()
        findings, _ = engine.check_call(Call("identify", "jane@example.com", data={"email": "x@example.com"}))
        engine.emit(findings, stacklevel=1)
        print("not reached")
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", f"error::{category}", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cioguard.pitfalls.categories.EmailAsIdWarning: CIO004" in result.stderr
    assert "not reached" not in result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_engine_works_after_fork(engine: PitfallEngine) -> None:
    engine.check_call(Call("identify", "user-1", data={"email": "a@example.com"}))
    pid = os.fork()
    if pid == 0:  # child: state is inherited, locks are fresh
        findings, _ = engine.check_call(Call("identify", "user-2", data={}))
        ok = [f.code for f in findings] == ["CIO005"] and not engine.check_call(
            Call("track", "user-1", "a_b", {})
        )[0]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_deferred_options_parse_like_python() -> None:
    from cioguard.pitfalls.cmdline import apply_deferred_options

    with warnings.catch_warnings():
        n = apply_deferred_options(
            ["ignore::cioguard.PitfallWarning", "e::cioguard.pitfalls.RateLimitWarning", "error::UserWarning"]
        )
        assert n == 2  # the plain UserWarning option was already applied by Python itself
        with pytest.raises(RateLimitWarning):
            warnings.warn(RateLimitWarning("CIO011 x"), stacklevel=1)
        warnings.warn(TrackBeforeIdentifyWarning("CIO003 x"), stacklevel=1)  # ignored: no error


def test_event_data_size_measured_by_the_caller(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(measure_event_data=False, track_before_identify=False), clock=clock)
    big = {"doc": "d" * 100_001}
    assert codes(engine, Call("track", "u1", "doc_saved", big)) == []  # not measured here …
    assert [f.code for f in engine.check_data_size("track", 100_020)] == ["CIO014"]  # … but reported
    assert engine.check_data_size("track", 100_000) == []
    measuring = PitfallEngine(PitfallConfig(track_before_identify=False), clock=clock)
    assert codes(measuring, Call("track", "u1", "doc_saved", big)) == ["CIO014"]


def test_blocking_advice_fits_the_api(clock: FakeClock) -> None:
    from cioguard.scope import request_scope

    # App API sends stay synchronous in the default background mode: "use background mode" would
    # send the user in a circle; they need background_transactional=True (or a worker).
    engine = PitfallEngine(PitfallConfig(blocking_threshold_seconds=0.05), clock=clock)
    with request_scope(method="POST", route="/checkout"):
        (send,) = engine.check_blocking("send_email", 0.2)
        (track,) = engine.check_blocking("track", 0.2)
    assert "background_transactional=True" in send.message
    assert "mode='background'" not in send.message
    assert "background_transactional" not in track.message
    assert "default background mode" in track.message
