"""Measure what the pitfall rules add to a repeated, well-formed call (not collected by pytest).

Run: ``.venv/bin/python tests/pitfalls/bench_hot_path.py``. Prints the best-of-N cost per call of
``engine.check_call`` next to two references measured in the same run (an empty Python function call,
and a three-item ``for`` loop over the event data), so numbers from a loaded machine can be read
relative to its speed.
"""

from __future__ import annotations

import functools
import timeit
import tracemalloc
from collections.abc import Callable

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallConfig, PitfallEngine, clear_events, declare_events


def best_ns(fn: Callable[[], object], number: int = 2000, repeat: int = 300) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def main() -> None:
    engine = PitfallEngine(PitfallConfig())
    engine.check_call(Call("identify", "user-1", data={"email": "jane@example.com"}))
    engine.check_call(Call("identify", 42, data={"email": "bob@example.com"}))
    data = {"order_id": "A1", "total": 12.5, "items": 3}
    cases = {
        "track, 3 data keys": Call("track", "user-1", "order_completed", data),
        "track, empty data": Call("track", "user-1", "order_completed", {}),
        "track, int id": Call("track", 42, "order_completed", data),
        "track, nested data": Call("track", "user-1", "order_completed", {"items": [{"sku": "a", "qty": 1}]}),
        "identify (repeat)": Call("identify", "user-1", data={"email": "jane@example.com", "plan": "pro"}),
    }

    def nothing() -> None:
        return None

    def loop3() -> int:
        total = 0
        for _key, value in data.items():
            if type(value) is str:
                total += len(value)
        return total

    print(f"reference: empty call {best_ns(nothing):.0f} ns, 3-item loop {best_ns(loop3):.0f} ns")
    for label, call in cases.items():
        engine.check_call(call)
        assert engine.check_call(call)[0] == [], label
        cost = best_ns(functools.partial(engine.check_call, call)) - best_ns(nothing)
        print(f"{label:24s} {cost:6.0f} ns")
    lean = PitfallEngine(PitfallConfig(measure_event_data=False))
    lean.check_call(Call("identify", "user-1", data={"email": "jane@example.com"}))
    call = cases["track, 3 data keys"]
    cost = best_ns(functools.partial(lean.check_call, call)) - best_ns(nothing)
    print(f"{'track, size measured by caller':24s} {cost:6.0f} ns")
    declare_events({"order_completed": {"order_id": str, "total": float, "items": int}})
    call = cases["track, 3 data keys"]
    print(f"{'track + taxonomy':24s} {best_ns(lambda: engine.check_call(call)) - best_ns(nothing):6.0f} ns")

    repeated_finding(nothing)

    tracemalloc.start()
    fresh = PitfallEngine(PitfallConfig())
    for i in range(100_000):
        fresh.check_call(Call("identify", f"user-{i}", data={"email": "x@example.com"}))
    for i in range(100_000, 200_000):
        fresh.check_call(Call("track", f"user-{i}", "order_completed", {}))
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    people = fresh._calls.people.identified
    false_positive = sum(f"other-{i}" in people for i in range(100_000)) / 100_000
    print(
        f"100k identified + 100k warned people: {current / 2**20:.2f} MiB held, "
        f"false positives {false_positive:.3%}"
    )


def repeated_finding(nothing: Callable[[], None]) -> None:
    """Issue 17 target: a finding already shown at a call site costs <= 0.5 us (emit only)."""
    import warnings

    clear_events()
    engine = PitfallEngine(PitfallConfig(track_before_identify=False))
    call = Call("track", "ada@example.com", "signed_up", {})  # CIO004 on every call
    findings, _ = engine.check_call(call)
    assert [f.code for f in findings] == ["CIO004"]

    def library_call() -> None:  # one frame between the "user" and emit, like the runtime
        engine.emit(findings)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        library_call()  # shown once; later calls are repeats
        cost = best_ns(library_call) - best_ns(nothing)
        rules = best_ns(functools.partial(engine.check_call, call)) - best_ns(nothing)
    engine.flush_counts()
    print(f"{'repeated finding: emit':24s} {cost:6.0f} ns   (rules for that call {rules:.0f} ns)")
    print(f"{'wrapt + deque.append':24s} {floor_ns():6.0f} ns   (issue 17's floor, this machine, now)")


def floor_ns() -> float:
    """A wrapt wrapper that only appends to a deque: the caller-cost floor issue 17 compares with."""
    import collections

    import wrapt

    queue: collections.deque[object] = collections.deque()

    class Client:
        def track(self, customer_id: str, name: str, data: object = None) -> None:
            return None

    def wrapper(
        wrapped: object, instance: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> None:
        queue.append((args, kwargs))

    wrapt.wrap_function_wrapper(Client, "track", wrapper)
    client = Client()
    return best_ns(lambda: client.track("u1", "signed_up", data={"a": 1}))


if __name__ == "__main__":
    main()
