"""Per-person scheduling without threads or clocks: what may go next, and with whom."""

from __future__ import annotations

from sink import make_op

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.scheduler import Group, Scheduler
from cioguard.operations.model import Endpoint, Operation

EP = Endpoint(api="track", base_url="http://127.0.0.1:9", auth_header="Basic eDp5")
OTHER = Endpoint(api="track", base_url="http://127.0.0.1:10", auth_header="Basic eDp5")


def allow(group: Group, now: float) -> tuple[bool, float | None]:
    return True, None


def fill(sched: Scheduler, *ops: Operation) -> list[Operation]:
    for op in ops:
        op._enqueued_at = 0.0  # what the engine's intake sets (acceptance time on its clock)
        sched.add(op, 0.0)
    return list(ops)


def test_a_single_goes_alone_without_cutting_the_v2_batch() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=0.0))
    ops = [make_op(EP, person=f"p{i}", seq=i, route="single" if i == 2 else "v2") for i in range(6)]
    fill(sched, *ops)
    first, _ = sched.take(0.0, allow)
    second, _ = sched.take(0.0, allow)
    assert first is not None
    assert second is not None
    assert first == [op for i, op in enumerate(ops) if i != 2]  # one whole batch
    assert second == [ops[2]]  # the v1-only operation, on its own


def test_a_person_is_never_in_flight_twice_and_keeps_order() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=0.0))
    a1, a2 = make_op(EP, person="a", seq=1, route="single"), make_op(EP, person="a", seq=2)
    b1 = make_op(EP, person="b", seq=3)
    fill(sched, a1, a2, b1)
    batch2, _ = sched.take(0.0, allow)
    assert batch2 is not None
    assert batch2 == [b1]  # the due v2 batch first; a2 waits for a1
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    assert batch == [a1]
    assert sched.take(0.0, allow)[0] is None
    sched.retry(batch, 5.0, 0.0)  # a1 failed: due again at t=5
    assert sched.take(1.0, allow) == (None, 4.0)
    again, _ = sched.take(5.0, allow)
    assert again is not None
    assert again == [a1]
    sched.finish(again, 5.0)
    last, _ = sched.take(5.0, allow)
    assert last is not None
    assert last == [a2]


def test_merge_is_a_barrier_of_its_endpoint() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=0.0))
    before = make_op(EP, person="s", seq=1)
    merge = make_op(EP, person="p", seq=2, method="merge_customers")
    after = make_op(EP, person="p", seq=3)
    elsewhere = make_op(OTHER, person="x", seq=4)
    fill(sched, before, merge, after, elsewhere)
    first, _ = sched.take(0.0, allow)
    second, _ = sched.take(0.0, allow)
    assert first is not None
    assert second is not None
    assert {e.op_id for e in first + second} == {before.op_id, elsewhere.op_id}
    assert sched.take(0.0, allow)[0] is None  # the merge waits for `before`; `after` for the merge
    sched.finish(first if first[0] is before else second, 0.0)
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    assert batch == [merge]
    sched.finish(batch, 0.0)
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    assert batch == [after]


def test_what_waited_behind_a_merge_goes_as_soon_as_the_merge_is_done() -> None:
    # The default flush interval: the merge goes when it is due; what waited behind it has waited
    # long enough (not a new interval counted from the merge's answer).
    sched = Scheduler(DeliveryConfig())
    merge = make_op(EP, person="p", seq=1, method="merge_customers")
    after = [make_op(EP, person=f"q{i}", seq=2 + i) for i in range(3)]
    fill(sched, merge, *after)
    batch, _ = sched.take(0.0, allow)
    assert batch == [merge]
    sched.finish(batch, 1.5)
    batch, wait = sched.take(1.5, allow)
    assert batch == after, wait


def test_an_expired_merge_releases_what_waited_behind_it() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=0.0))
    merge = make_op(EP, person="p", seq=1, method="merge_customers")
    after = make_op(EP, person="p", seq=2)
    entries = fill(sched, merge, after)
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    sched.retry(batch, 0.0, 0.0)
    sched.remove(entries[0], 0.0)  # given up (expired)
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    assert batch == [after]  # the person is not left busy
    assert sched.size == 1


def test_partial_batches_wait_for_the_flush_interval_unless_flushed() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=1.0))
    fill(sched, make_op(EP, person="a", seq=1))
    assert sched.take(0.5, allow) == (None, 0.5)
    sched.flush_upto = 1  # a flush marker was taken in after the operation
    batch, _ = sched.take(0.5, allow)
    assert batch is not None


def test_v2_batches_go_first_and_singles_leave_one_lane_for_them() -> None:
    sched = Scheduler(DeliveryConfig(flush_interval=0.0, lanes=3))  # singles take 2 lanes at most
    singles = [make_op(EP, person=f"anon{i}", seq=i, route="single") for i in range(4)]
    fill(sched, *singles)
    one, _ = sched.take(0.0, allow)
    two, _ = sched.take(0.0, allow)
    assert one is not None
    assert two is not None
    assert sched.take(0.0, allow)[0] is None  # the third lane is kept for v2 batches
    later = make_op(EP, person="u", seq=9)
    fill(sched, later)
    batch, _ = sched.take(0.0, allow)
    assert batch is not None
    assert batch == [later]
    sched.retry(one, 0.0, 0.0)  # a failed single frees its share (and is due again)
    sched.finish(two, 0.0)
    assert sched.singles_out == 0
    again, _ = sched.take(0.0, allow)
    assert again is not None
    assert again[0] in (singles[0], singles[2])  # singles may use both lanes again
