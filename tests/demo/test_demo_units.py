"""The demo's pieces that decide repeatability and honest charts (fast; the full run is test_demo.py)."""

from __future__ import annotations

import pytest

from cioguard.demo import _parser
from cioguard.demo.report import lines, nice_ticks
from cioguard.demo.summary import _relative
from cioguard.demo.workload import build_workload, shard


@pytest.mark.parametrize("requests", [10, 60, 240, 241])
def test_a_seed_gives_exactly_the_requested_steps_every_time(requests: int) -> None:
    steps = build_workload(requests, seed=7)
    assert len(steps) == requests
    assert steps == build_workload(requests, seed=7)
    assert steps != build_workload(requests, seed=8)
    assert {s.path for s in steps} >= {"/legacy/import", "/legacy/signup"}


def test_help_states_the_real_default() -> None:
    helps = {a.dest: a.help for a in _parser()._actions}
    default = _parser().get_default("requests")
    assert f"default {default}" in str(helps["requests"])
    assert len(build_workload(default, seed=7)) == default


def test_each_person_stays_on_one_worker_in_order() -> None:
    steps = build_workload(120, seed=3)
    queues = shard(steps, 4)
    assert sorted(i for queue in queues for i in queue) == list(range(len(steps)))
    for queue in queues:
        assert queue == sorted(queue)
    people = [{steps[i].params.get("user") or steps[i].params.get("email") for i in q} for q in queues]
    for a in range(4):
        for b in range(a + 1, 4):
            assert not people[a] & people[b]
    assert queues == shard(build_workload(120, seed=3), 4)


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (243, [0, 100, 200, 300]),
        (78, [0, 20, 40, 60, 80]),
        (4.4, [0, 2, 4, 6]),
        (0.3, [0, 0.1, 0.2, 0.3]),
    ],
)
def test_ticks_are_round_values_at_their_positions(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == pytest.approx(ticks)


def test_line_chart_labels_name_the_value_at_their_height() -> None:
    svg = lines("t", [("delivered", [(0.0, 0.0), (2.0, 243.0)])], "operations")
    assert ">122<" not in svg  # the old half-way label, drawn at 121.5
    for label in (">0<", ">100<", ">200<", ">300<"):
        assert label in svg


def test_sender_findings_are_not_attributed_to_a_file() -> None:
    assert _relative("<cioguard>:0").startswith("(background sender")
    # installed from the wheel, the instrument() line of a sender finding is the console script
    assert _relative("/srv/venv/bin/cioguard:8").startswith("(background sender")
    assert _relative("/srv/venv/lib/python3.11/site-packages/cioguard/demo/app.py:57").endswith("app.py:57")
