"""ULIDs: format, time order, uniqueness across threads and forks."""

from __future__ import annotations

import os
import re
import threading
import warnings
from typing import Any

import pytest

from cioguard.operations import ulid as ulid_module
from cioguard.operations.ulid import UlidFactory, decode_ms, new_ulid

CROCKFORD = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_format_and_embedded_time() -> None:
    clock = FakeClock(1_700_000_000.123456)
    factory = UlidFactory(clock=clock)
    value = factory.new()
    assert CROCKFORD.match(value), value
    assert decode_ms(value) == 1_700_000_000_123
    assert decode_ms(factory.new(1_800_000_000.0)) == 1_800_000_000_000
    assert CROCKFORD.match(new_ulid())


def test_agrees_with_python_ulid() -> None:
    import ulid as ulid_lib  # python-ulid, a dev dependency: an independent ULID parser

    value = UlidFactory(clock=FakeClock(1_712_345_678.9)).new()
    parsed = ulid_lib.ULID.from_str(value)
    assert parsed.milliseconds == 1_712_345_678_900
    assert str(parsed) == value


def test_random_part_comes_from_the_injected_source() -> None:
    clock = FakeClock(1_700_000_000.0)
    first = UlidFactory(clock=clock, randbytes=lambda n: bytes(n)).new()
    assert first == first[:10] + "0" * 16
    other = UlidFactory(clock=clock, randbytes=lambda n: b"\xff" * n).new()
    assert other[10:20] == "Z" * 10


def test_sorted_by_time_and_by_creation_within_a_millisecond() -> None:
    clock = FakeClock(1_700_000_000.0)
    # Start the counter just below a 1024 boundary so the cached head must be rebuilt mid-run.
    factory = UlidFactory(clock=clock, randbytes=lambda n: b"\x00" * (n - 2) + b"\x03\xf0")
    made = []
    for step in range(3000):
        if step % 700 == 0:
            clock.now += 0.0005  # sometimes the same millisecond, sometimes the next
        made.append(factory.new())
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_clock_going_back_keeps_ids_unique() -> None:
    clock = FakeClock(1_700_000_000.5)
    factory = UlidFactory(clock=clock)
    seen = {factory.new() for _ in range(100)}
    clock.now -= 1.0
    seen |= {factory.new() for _ in range(100)}
    assert len(seen) == 200


def test_unique_across_threads() -> None:
    factory = UlidFactory(clock=FakeClock(1_700_000_000.0))  # one millisecond: the hardest case
    results: list[list[str]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def work(out: list[str]) -> None:
        barrier.wait()
        new = factory.new
        for _ in range(5_000):
            out.append(new())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    everything = [value for out in results for value in out]
    assert len(everything) == 40_000
    assert len(set(everything)) == 40_000
    for out in results:  # each thread sees its own ids in order
        assert out == sorted(out)


def _ids_from_child(factory: Any, count: int) -> list[str]:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns when other tests left threads running; this child only writes to a pipe.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: write ids, exit without running pytest's teardown
        try:
            os.close(read_end)
            payload = "\n".join(factory.new() for _ in range(count)).encode()
            os.write(write_end, payload)
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode().split("\n")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_unique_across_fork() -> None:
    factory = UlidFactory(clock=FakeClock(1_700_000_000.0))
    factory.new()  # the parent has state the child inherits
    child = _ids_from_child(factory, 2_000)
    parent = [factory.new() for _ in range(2_000)]
    assert len(child) == 2_000
    assert not set(child) & set(parent)
    assert child[0][10:20] != parent[0][10:20]  # the child drew a new random prefix


def test_fork_without_hooks_is_caught_by_the_pid_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # uWSGI forks without running Python's at-fork hooks: simulate it by changing what getpid says.
    clock = FakeClock(1_700_000_000.0)
    factory = UlidFactory(clock=clock)
    before = factory.new()
    monkeypatch.setattr(ulid_module.os, "getpid", lambda: -42)
    clock.now += 0.001  # the pid is checked when the millisecond changes
    after = factory.new()
    assert after[10:20] != before[10:20]
    assert after > before
