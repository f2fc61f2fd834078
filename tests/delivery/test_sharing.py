"""How the sender shares the process with callers: an idle sender is woken without the engine lock,
calls are taken in while every request waits for an answer, and a flush counts what came before it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.delivery.doorbell import Doorbell
from cioguard.delivery.state import INTAKE_NUDGE
from cioguard.operations.model import Endpoint


def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_ring_before_the_wait_is_never_lost() -> None:
    bell = Doorbell()
    seen = bell.rings
    bell.ring()  # (a caller appended and rang while the sender was still looking for work)
    began = time.monotonic()
    bell.wait(seen, 5.0)
    assert time.monotonic() - began < 1.0
    began = time.monotonic()
    bell.wait(bell.rings, 0.05)  # nothing rang since: it sleeps until the timeout
    assert time.monotonic() - began >= 0.04


def test_a_caller_wakes_an_idle_sender_while_another_holds_the_engine_lock(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.0))
    engines.append(engine)
    assert engine.submit(make_op(endpoint, person="first"))  # starts the threads
    assert engine.flush(5.0)
    core = engine._core
    assert until(lambda: core.idle)
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:  # what a sender does for milliseconds while it takes calls in
        with core.lock:
            held.set()
            release.wait(5.0)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(5.0)
        began = time.monotonic()
        assert engine.submit(make_op(endpoint, person="second"))  # rings the doorbell
        assert time.monotonic() - began < 0.5  # (it used to wait for the engine lock)
    finally:
        release.set()
        holder.join(5.0)
    assert engine.flush(5.0)
    assert len(sink.entries()) == 2


def test_calls_are_taken_in_while_every_request_waits(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    # One lane, its request held for a while: the spare thread still takes calls in (completed,
    # their pitfall checks run, kept compact), every INTAKE_NUDGE calls.
    engine = DeliveryEngine(DeliveryConfig(lanes=1, flush_interval=0.0))
    engines.append(engine)
    sink.script(Reply(delay=1.5))
    assert engine.submit(make_op(endpoint, person="p0"))
    core = engine._core
    assert until(lambda: core.requests == 1)
    ops = [make_op(endpoint, person=f"p{i % 7}") for i in range(INTAKE_NUDGE + 50)]
    for op in ops:
        assert engine.submit(op)
    assert until(lambda: len(core.inbox) < INTAKE_NUDGE and core.sched.size > INTAKE_NUDGE, 1.2)
    assert core.requests == 1  # still waiting for the first answer: nobody sent more
    assert engine.flush(10.0)
    assert len(sink.entries()) == len(ops) + 1


def test_a_flush_counts_only_what_was_accepted_before_it(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = DeliveryEngine(DeliveryConfig(lanes=1, flush_interval=0.0))
    engines.append(engine)
    sink.script(Reply(delay=0.3), Reply(delay=1.5))
    assert engine.submit(make_op(endpoint, person="a"))  # in flight for 0.3 s
    core = engine._core
    assert until(lambda: core.requests == 1)
    outcome: list[bool] = []
    flusher = threading.Thread(target=lambda: outcome.append(engine.flush(10.0)))
    flusher.start()
    assert until(lambda: bool(core.marks))  # the marker is taken in
    for i in range(INTAKE_NUDGE + 10):  # accepted after the flush began: not waited for
        engine.submit(make_op(endpoint, person=f"b{i % 5}"))
    began = time.monotonic()
    flusher.join(10.0)
    assert outcome == [True]
    assert time.monotonic() - began < 1.2  # did not wait for the later batch's 1.5 s answer
    assert not core.tags or core.marks  # flush tags are dropped once no marker waits
    assert engine.flush(10.0)
