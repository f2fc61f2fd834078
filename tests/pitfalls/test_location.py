"""Which frames are the application's, which are cioguard's own calls, and which are passed over."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import threading
from pathlib import Path
from typing import cast

import cioguard
from cioguard.pitfalls import location
from cioguard.pitfalls.emitter import Emitter
from cioguard.telemetry.recorder import NullRecorder, Recorder

SKIP, INTERNAL, USER = 0, 1, 2


def test_classification() -> None:
    cioguard_file = str(Path(cioguard.__file__).parent / "webhooks" / "actions.py")
    assert location.classify("cioguard.webhooks.actions", cioguard_file) == INTERNAL
    assert location.classify("cioguard.delivery.replay", cioguard_file) == INTERNAL
    assert location.classify("__main__", str(Path(cioguard.__file__).parent / "__main__.py")) == INTERNAL
    assert location.classify("cioguard.instrumentation.runtime", cioguard_file) == SKIP
    assert location.classify("cioguard.testing.emulator", cioguard_file) == SKIP
    assert location.classify("cioguard.demo.app", cioguard_file) == USER  # the demo's shop is an app
    assert location.classify("customerio.track", "/x/site-packages/customerio/track.py") == SKIP
    assert location.classify("concurrent.futures.thread", concurrent.futures.__file__ or "") == SKIP
    assert location.classify("json", json.__file__ or "") == SKIP
    assert location.classify("werkzeug.serving", "/x/site-packages/werkzeug/serving.py") == USER
    assert location.classify("myapp.views", "/srv/app/myapp/views.py") == USER


def test_locate_returns_the_callers_line() -> None:
    def library() -> location.Location | None:
        return location.locate(1)

    line = sys._getframe().f_lineno + 1
    where = library()
    assert where is not None
    assert (where[0], where[1]) == (__file__, line)


class OneByOne(NullRecorder):
    """A recorder written before pitfall() took a count: one call per occurrence still works."""

    def __init__(self) -> None:
        self.codes: list[str] = []

    def pitfall(self, code: str) -> None:  # type: ignore[override]
        self.codes.append(code)


def test_pending_counts_reach_a_recorder_without_the_count_parameter() -> None:
    recorder = OneByOne()
    emitter = Emitter("warn", cast(Recorder, recorder))
    for code in ["CIO004"] * 3 + ["CIO009"] * 2:
        emitter.count_later(code)
    emitter.flush_counts()
    assert sorted(recorder.codes) == ["CIO004"] * 3 + ["CIO009"] * 2
    emitter.count_later("CIO004")
    emitter.flush_counts()
    emitter.flush_counts()  # nothing new: nothing pushed
    assert sorted(recorder.codes) == ["CIO004"] * 4 + ["CIO009"] * 2


def test_no_count_is_lost_between_threads() -> None:
    recorder = OneByOne()
    emitter = Emitter("warn", cast(Recorder, recorder))

    def hammer() -> None:
        for _ in range(20_000):
            emitter.count_later("CIO006")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(50):  # flushes interleaved with the increments
        emitter.flush_counts()
    for thread in threads:
        thread.join()
    emitter.flush_counts()
    assert len(recorder.codes) == 80_000
