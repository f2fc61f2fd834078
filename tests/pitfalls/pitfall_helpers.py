"""Helpers shared by the pitfall tests (a fake clock, a counting recorder, call shortcuts)."""

from __future__ import annotations

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallEngine
from cioguard.telemetry.recorder import NullRecorder


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingRecorder(NullRecorder):
    """A real Recorder (no mock) that keeps the pitfall codes it was given."""

    def __init__(self) -> None:
        self.pitfalls: list[str] = []

    def pitfall(self, code: str, count: int = 1) -> None:
        self.pitfalls.extend([code] * count)


def codes(engine: PitfallEngine, call: Call, mode: str = "background") -> list[str]:
    findings, _ = engine.check_call(call, mode=mode)
    return [f.code for f in findings]


def identify(engine: PitfallEngine, cid: object, **attrs: object) -> list[str]:
    return codes(engine, Call("identify", customer_id=cid, data=attrs))
