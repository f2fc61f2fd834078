"""The engine over real loopback HTTP: batching, ordering, overflow, lifecycle, telemetry."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.delivery.transport import TransportResponse
from cioguard.operations.model import Endpoint
from cioguard.telemetry.recorder import NullRecorder


def start(engines: list[DeliveryEngine], **options: object) -> DeliveryEngine:
    recorder = options.pop("recorder", None)
    engine = DeliveryEngine(DeliveryConfig(**options), recorder=recorder)  # type: ignore[arg-type]
    engines.append(engine)
    return engine


def test_flush_sends_partial_batch_now(sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    engine = start(engines, flush_interval=60.0)
    ops = [make_op(endpoint, person=f"p{i}") for i in range(5)]
    assert all(engine.submit(op) for op in ops)
    began = time.monotonic()
    assert engine.flush(5.0)
    assert time.monotonic() - began < 2.0
    assert sorted(e["id"] for e in sink.entries()) == sorted(op.op_id for op in ops)
    stats = engine.stats()
    assert stats["delivered"] == 5
    assert stats["accepted"] == 5
    assert stats["queue_size"] == 0


def test_flush_with_nothing_pending_is_immediate(engines: list[DeliveryEngine]) -> None:
    engine = start(engines)
    began = time.monotonic()
    assert engine.flush(5.0)
    assert time.monotonic() - began < 0.1


def test_batches_by_count(sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    engine = start(engines, max_batch_operations=10, lanes=1, flush_interval=60.0)
    for i in range(35):
        engine.submit(make_op(endpoint, seq=i))
    assert sink.wait_for(lambda: len(sink.requests) >= 3)
    assert engine.flush(5.0)
    assert [len(r.entries()) for r in sink.requests] == [10, 10, 10, 5]


def test_a_small_queue_sends_a_quarter_of_itself_without_waiting_for_the_interval(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    # max_queue_size 100: a 2 000-operation batch can never fill; waiting flush_interval for it
    # would press callers (backpressure from 50 queued) while the endpoint sits idle.
    engine = start(engines, max_queue_size=100, lanes=1, flush_interval=60.0)
    for i in range(60):
        assert engine.submit(make_op(endpoint, person=f"p{i}", seq=i))
    # Long before the 60 s interval: batches of at least a quarter of the queue go at once.
    assert sink.wait_for(lambda: sum(len(r.entries()) for r in sink.requests) >= 50, timeout=5.0)
    assert all(len(r.entries()) >= 25 for r in sink.requests)
    assert engine.flush(5.0)
    assert len(sink.entries()) == 60


def test_batches_by_bytes_including_envelope(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = start(engines, max_batch_bytes=5_000, lanes=1, flush_interval=60.0)
    ops = [make_op(endpoint, seq=i, pad=900) for i in range(20)]
    for op in ops:
        engine.submit(op)
    assert engine.flush(5.0)
    sizes = [len(r.body) for r in sink.requests]
    assert all(size <= 5_000 for size in sizes)
    assert len(sizes) == -(-sum(op.size + 1 for op in ops) // 5_000) or len(sizes) <= 6
    assert max(sizes) > 4_000  # batches are actually filled
    assert len(sink.entries()) == 20


def test_partial_batch_sent_after_flush_interval(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = start(engines, flush_interval=0.2)
    began = time.monotonic()
    engine.submit(make_op(endpoint))
    assert sink.wait_for(lambda: len(sink.requests) == 1, 3.0)
    elapsed = sink.requests[0].arrived_at - began
    assert 0.15 <= elapsed < 1.5


def test_oversize_dropped_by_the_sender(endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    # The caller never reads the operation's size: the sender drops it, counted, and flush says so.
    engine = start(engines, max_batch_bytes=1_000)
    assert engine.submit(make_op(endpoint, pad=2_000))
    assert not engine.flush(5.0)
    assert engine.stats()["dropped"]["oversize"] == 1


def test_mixed_routes_keep_per_person_order(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = start(engines, lanes=1, flush_interval=60.0)
    ops = [make_op(endpoint, person="p", seq=i, route="single" if i % 3 == 0 else "v2") for i in range(9)]
    for op in ops:
        engine.submit(op)
    assert engine.flush(5.0)
    assert [e["id"] for e in sink.entries()] == [op.op_id for op in ops]


def test_per_shard_order_under_concurrency_and_faults(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    # Every 7th request fails once: retried batches must still come before later ones.
    count = {"n": 0}
    lock = threading.Lock()

    def responder(rec: object) -> Reply:
        with lock:
            count["n"] += 1
            return Reply(503) if count["n"] % 7 == 0 else Reply(200)

    sink.responder = responder
    engine = start(
        engines, lanes=4, max_batch_operations=50, flush_interval=0.01, retry_base=0.0, rate_limit=10_000.0
    )
    per_thread = 400

    def producer(t: int) -> None:
        for i in range(per_thread):
            engine.submit(make_op(endpoint, person=f"person-{i % 13}", seq=t * 1_000_000 + i))

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert engine.flush(20.0)
    entries = sink.entries()
    assert len(entries) == 8 * per_thread
    last: dict[tuple[str, int], int] = {}
    for entry in entries:
        n = entry["attributes"]["n"]
        key = (entry["identifiers"]["id"], n // 1_000_000)
        assert last.get(key, -1) < n, "operations of one person were reordered"
        last[key] = n
    assert engine.stats()["retries"] >= 1


def test_drop_newest_when_full(sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    sink.default = Reply(200, delay=0.3)
    engine = start(engines, max_queue_size=5, lanes=1, flush_interval=0.0, max_batch_operations=1)
    results = [engine.submit(make_op(endpoint, seq=i)) for i in range(12)]
    assert results[:5] == [True] * 5
    assert not all(results)
    dropped = engine.stats()["dropped"]["queue_full"]
    assert dropped == results.count(False) >= 6
    assert not engine.flush(10.0)  # everything sent, but some were dropped since the last flush
    assert engine.flush(1.0)  # nothing new dropped since
    assert len(sink.entries()) == results.count(True)


def test_drop_oldest_keeps_the_newest(sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    gate = threading.Event()
    sink.responder = lambda rec: Reply(200) if gate.wait(5) else Reply(500)
    engine = start(engines, max_queue_size=4, lanes=1, overflow="drop_oldest", flush_interval=0.0)
    first = make_op(endpoint, seq=0)
    engine.submit(first)
    assert sink.wait_for(lambda: engine.stats()["in_flight"] == 1, 2.0)  # op 0 is in flight
    ops = [make_op(endpoint, seq=i) for i in range(1, 10)]
    assert all(engine.submit(op) for op in ops)  # drop_oldest never refuses the newcomer
    gate.set()
    assert not engine.flush(5.0)  # drops happened
    got = [e["id"] for e in sink.entries()]
    assert ops[-1].op_id in got
    assert ops[0].op_id not in got
    assert engine.stats()["dropped"]["queue_full"] == 10 - len(got)


def test_block_waits_then_drops(sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]) -> None:
    sink.default = Reply(200, delay=0.5)
    engine = start(
        engines, max_queue_size=1, lanes=1, overflow="block", block_timeout=0.1, flush_interval=0.0
    )
    assert engine.submit(make_op(endpoint))
    began = time.monotonic()
    results = [engine.submit(make_op(endpoint)) for _ in range(2)]
    waited = time.monotonic() - began
    assert results.count(False) >= 1
    assert 0.1 <= waited < 1.0
    assert engine.stats()["dropped"]["queue_full"] == results.count(False)


def test_block_gets_room_when_sender_catches_up(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    sink.default = Reply(200, delay=0.05)
    engine = start(
        engines, max_queue_size=2, lanes=1, overflow="block", block_timeout=5.0, flush_interval=0.0
    )
    assert all(engine.submit(make_op(endpoint)) for _ in range(6))
    assert engine.flush(5.0)
    assert len(sink.entries()) == 6


def test_shutdown_is_bounded_with_a_hanging_endpoint(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    sink.default = Reply(200, delay=3.0)
    engine = start(engines, request_timeout=30.0, flush_interval=0.0, lanes=1)
    engine.submit(make_op(endpoint, person="p0"))
    assert sink.wait_for(lambda: engine.stats()["in_flight"] == 1, 2.0)
    for i in range(1, 10):
        engine.submit(make_op(endpoint, person=f"p{i}"))
    began = time.monotonic()
    assert not engine.flush(0.3)
    assert time.monotonic() - began < 0.8
    began = time.monotonic()
    engine.shutdown(0.5)
    assert time.monotonic() - began < 1.2
    engine.shutdown(0.5)  # idempotent
    assert not engine.submit(make_op(endpoint))

    # The request still out at the deadline is counted with the rest (a process exiting now never
    # sees it end): 1 in flight + 9 queued + 1 submitted after shutdown. When it ends later (3 s
    # server delay) nothing is counted twice.
    stats = engine.stats()
    assert stats["dropped"]["shutdown"] == 11, stats
    # Stopped: nothing queued or in flight any more (accepted = delivered + dropped adds up), even
    # while a thread still waits for that request's answer.
    assert (stats["queue_size"], stats["in_flight"], stats["running"]) == (0, 0, False), stats
    assert sink.wait_for(lambda: engine._core.inflight == 0, 6.0)  # the late answer was read
    stats = engine.stats()
    assert (stats["delivered"], stats["dropped"]["shutdown"]) == (0, 11), stats
    assert len(sink.entries()) == 1  # it did arrive: its event id lets Customer.io drop a resend


def rate_limited(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine], retry_after: str
) -> DeliveryEngine:
    """An engine with defaults whose first batch of 20 operations got a 429 with ``retry_after``."""
    sink.script(Reply(429, headers={"Retry-After": retry_after}))
    engine = start(engines)
    for i in range(20):
        engine.submit(make_op(endpoint, person=f"p{i}"))
    assert sink.wait_for(lambda: engine.stats()["rate_limited"] == 1, 4.0)
    return engine


def test_a_429_pause_waits_in_the_queue_not_in_a_request(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = rate_limited(sink, endpoint, engines, "1")
    stats = engine.stats()
    assert (stats["in_flight"], stats["queue_size"]) == (0, 20), stats
    assert engine.flush(5.0)
    assert engine.stats()["delivered"] == 20


def test_shutdown_during_a_long_429_pause_counts_what_waits(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = rate_limited(sink, endpoint, engines, "30")
    began = time.monotonic()
    engine.shutdown(0.5)
    assert time.monotonic() - began < 1.5
    stats = engine.stats()
    assert stats["dropped"]["shutdown"] == 20, stats
    assert (stats["in_flight"], stats["queue_size"]) == (0, 0), stats
    assert not engine.flush(1.0)


def test_concurrent_flushes_each_report_the_rejections_they_covered(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    engine = start(engines, flush_interval=60.0)
    for round_ in range(3):
        sink.script(Reply(400))
        for i in range(10):
            engine.submit(make_op(endpoint, person=f"p{i}"))
        results: list[bool] = []

        def flush(results: list[bool] = results) -> None:
            results.append(engine.flush(5.0))

        flushers = [threading.Thread(target=flush) for _ in range(2)]
        for thread in flushers:
            thread.start()
        for thread in flushers:
            thread.join(10.0)
        assert results == [False, False], round_
        assert engine.flush(1.0)  # told once per flush that covered them: the next one is clean
    assert engine.stats()["dropped"]["rejected"] == 30


def test_rejections_and_401_hook(sink: Sink, endpoint: Endpoint) -> None:
    seen: list[int] = []
    sink.script(Reply(401), Reply(207, body=b'{"errors":[{"batch_index":0,"reason":"bad","field":"id"}]}'))
    engine = DeliveryEngine(
        DeliveryConfig(lanes=1, flush_interval=60.0), on_response=lambda ep, status: seen.append(status)
    )
    second = [make_op(endpoint, seq=1), make_op(endpoint, seq=2)]
    try:
        engine.submit(make_op(endpoint))
        assert not engine.flush(5.0)  # the 401 rejected it: flush tells the truth
        for op in second:
            engine.submit(op)
        assert not engine.flush(5.0)  # the 207 rejected one entry
        assert engine.flush(1.0)  # nothing pending, nothing dropped since
    finally:
        engine.shutdown(1.0)
    stats = engine.stats()
    assert seen == [401, 207]
    assert stats["dropped"]["rejected"] == 2  # the whole 401 batch + entry 0 of the 207 batch
    assert stats["delivered"] == 1
    assert stats["retries"] == 0
    assert [e["id"] for e in sink.entries()] == [op.op_id for op in second]  # the sink records bodies


class Recording(NullRecorder):
    def __init__(self) -> None:
        self.log: list[tuple[str, ...]] = []
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def _add(self, *item: str) -> None:
        with self.lock:
            self.log.append(item)
            self.threads.add(threading.current_thread().name)

    def call(self, method: str, mode: str, seconds: float) -> None:
        self._add("call", method, mode)

    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        for _ in durations:
            self._add("call", method, mode)

    def delivery_lags(self, seconds: Sequence[float]) -> None:
        for _ in seconds:
            self._add("lag")

    def enqueued(self, method: str, count: int = 1) -> None:
        self._add("enqueued", method, str(count))

    def delivered(self, method: str, count: int = 1) -> None:
        self._add("delivered", method, str(count))

    def dropped(self, reason: str, count: int = 1) -> None:
        self._add("dropped", reason, str(count))

    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        self._add("request", endpoint, status_code)

    def batch_operations(self, count: int) -> None:
        self._add("batch_operations", str(count))

    def delivery_lag(self, seconds: float) -> None:
        self._add("lag")


def test_caller_thread_records_nothing_on_success(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    recorder = Recording()
    engine = start(engines, recorder=recorder, lanes=1, flush_interval=60.0)
    for i in range(3):
        engine.submit(make_op(endpoint, seq=i, method="identify" if i else "track"))
    assert recorder.log == []
    assert engine.flush(5.0)
    names = [c[0] for c in recorder.log]
    assert names.count("call") == 3
    assert ("call", "track", "background") in recorder.log
    assert ("enqueued", "identify", "2") in recorder.log
    assert ("request", "v2_batch", "200") in recorder.log
    assert ("batch_operations", "3") in recorder.log
    assert names.count("lag") == 3
    assert threading.current_thread().name not in recorder.threads


def test_hook_calling_flush_and_shutdown_never_deadlocks(sink: Sink, endpoint: Endpoint) -> None:
    outcomes: list[bool] = []
    holder: list[DeliveryEngine] = []

    def hook(ep: Endpoint, status: int) -> None:
        outcomes.append(holder[0].flush(5.0))
        holder[0].shutdown(5.0)

    engine = DeliveryEngine(DeliveryConfig(lanes=1, flush_interval=0.0), on_response=hook)
    holder.append(engine)
    began = time.monotonic()
    engine.submit(make_op(endpoint))
    assert sink.wait_for(lambda: engine.stats()["delivered"] == 1, 3.0)
    assert time.monotonic() - began < 2.0
    assert outcomes == [False]
    assert not engine.submit(make_op(endpoint))  # the hook's shutdown took effect
    engine.shutdown(1.0)


def test_on_drop_may_call_flush_without_deadlock(sink: Sink, endpoint: Endpoint) -> None:
    sink.default = Reply(200, delay=0.3)
    outcomes: list[bool] = []
    holder: list[DeliveryEngine] = []

    def on_drop(reason: str, count: int, methods: object) -> None:
        outcomes.append(holder[0].flush(0.1))  # the caller's thread, engine lock not held

    engine = DeliveryEngine(DeliveryConfig(max_queue_size=1, lanes=1, flush_interval=0.0, on_drop=on_drop))
    holder.append(engine)
    try:
        began = time.monotonic()
        results = [engine.submit(make_op(endpoint, seq=i)) for i in range(3)]
        assert time.monotonic() - began < 2.0
        assert results.count(False) >= 1
        assert outcomes
        assert outcomes[0] is False
        assert engine.stats()["dropped"]["queue_full"] == results.count(False)
    finally:
        engine.shutdown(2.0)


def test_flush_waits_for_a_finished_request_still_being_counted(
    endpoint: Endpoint, engines: list[DeliveryEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected batch leaves the queue before its drop is counted (outside the lock): a flush in
    between must wait for the count, not say True and leave the rejection to the next flush."""
    import cioguard.delivery.dispatch as dispatch

    answered = threading.Event()

    class Rejecting:
        def send(self, *args: object) -> TransportResponse:
            answered.set()
            return TransportResponse(400)

    handoff = dispatch.handoff

    def slow_handoff() -> None:  # widens the window between leaving the queue and being counted
        if threading.current_thread().name.startswith("cioguard-delivery"):
            time.sleep(0.3)
        handoff()

    monkeypatch.setattr(dispatch, "handoff", slow_handoff)
    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.0), transport=Rejecting())
    engines.append(engine)
    engine.submit(make_op(endpoint, person="a"))
    assert answered.wait(2.0)
    time.sleep(0.05)  # inside the window: out of the queue, not counted yet
    assert engine.stats()["queue_size"] == 0
    assert engine.flush(2.0) is False
    assert engine.stats()["dropped"]["rejected"] == 1
    assert engine.flush(1.0) is True


def test_a_retired_engine_hands_a_late_call_to_its_successor(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    # A second instrument() retires an engine: a thread already inside one of its wrappers when
    # they were swapped submits after its shutdown; the new engine takes the call.
    old, new = start(engines), start(engines)
    old.successor = new
    old.shutdown(1.0)
    late = make_op(endpoint)
    assert old.submit(late)
    assert new.flush(5.0)
    assert [e["id"] for e in sink.entries()] == [late.op_id]
    assert old.stats()["dropped"]["shutdown"] == 0


def test_a_queued_call_the_sender_cannot_encode_is_dropped_and_the_queue_goes_on(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    """Defence in depth: the caller refuses a lone surrogate in a name or id (SerializationError),
    but if one ever got through, the sender drops that call (counted) instead of retrying it
    forever at the head of the queue with every later call behind it."""
    from cioguard.operations.deferred import Lanes, Snapshot
    from cioguard.operations.entry import snapshot_data

    engine = start(engines)
    lanes = Lanes()

    def snapshot(name: str, seq: int) -> Snapshot:
        made = snapshot_data("track", "u1", "clicked", {"seq": seq}, None, None, False)
        assert made is not None
        data_json, value, stamp = made
        return (endpoint, "track", data_json, value, None, time.time(), None, 1, lanes, name, stamp)

    assert engine.submit_snapshot(snapshot("bad\ud800name", 0))
    for seq in range(1, 6):
        assert engine.submit_snapshot(snapshot("clicked", seq))
    assert engine.flush(5.0) is False  # one call was dropped
    stats = engine.stats()
    assert stats["delivered"] == 5
    assert stats["dropped"]["rejected"] == 1
    assert stats["accepted"] == 6
    assert stats["queue_size"] == 0
    assert [e["attributes"]["seq"] for e in sink.entries()] == [1, 2, 3, 4, 5]
