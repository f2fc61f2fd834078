"""The whole stack: the plain SDK (v1) and the instrumented SDK (background, v2 batches) leave the
emulator in the same state, scenario by scenario (the scenarios of tests/operations).

Background delivery keeps each *identifier's* operations in order, not the order across people (that
is what lets several requests be in flight). Two consequences shape this comparison:

- steps addressing a person by an emulator-assigned ``cio_…`` id are left out: which person holds
  ``cio_000000000001`` depends on which person the emulator happened to create first;
- events of one person addressed by different identifiers (id and email) are compared as a set,
  and so are anonymous events (each anonymous id is its own lane key).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.testing import FakeCustomerIO

_spec = importlib.util.spec_from_file_location(
    "operations_equivalence", Path(__file__).parents[1] / "operations" / "test_equivalence.py"
)
assert _spec is not None
assert _spec.loader is not None
scenarios = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenarios)

Step = tuple[str, tuple[Any, ...], dict[str, Any]]


def _replay(fake: FakeCustomerIO, steps: list[Step], call: Callable[[Any, Step], None]) -> None:
    client = fake.client()
    try:
        for step in steps:
            call(client, step)
    finally:
        client.close()


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    snapshot = scenarios._without_event_ids(snapshot)
    for person in snapshot["people"].values():
        person["events"] = sorted(person["events"], key=repr)
    # Anonymous events of different anonymous ids are different "people": no order between them.
    snapshot["anonymous_events"] = sorted(snapshot["anonymous_events"], key=repr)
    return snapshot


def _by_cio_id(step: Step) -> bool:
    return any(isinstance(arg, str) and arg.startswith("cio_") for arg in step[1])


def _plain(client: Any, step: Step) -> None:
    method, args, kwargs = step
    getattr(client, method)(*args, **kwargs)


@pytest.mark.parametrize("scenario", sorted(scenarios.SCENARIOS))
def test_background_delivery_reaches_the_same_state_as_the_plain_sdk(scenario: str) -> None:
    steps: list[Step] = [step for step in scenarios.SCENARIOS[scenario] if not _by_cio_id(step)]
    with FakeCustomerIO(https=True) as plain, FakeCustomerIO(https=True) as guarded, guarded.trust():
        _replay(plain, steps, _plain)
        cioguard.instrument(track_url=guarded.track_url, registry=CollectorRegistry(), pitfalls="off")
        try:
            _replay(guarded, steps, _plain)
            assert cioguard.flush(timeout=10)
            assert sum(cioguard.stats()["dropped"].values()) == 0
        finally:
            cioguard.uninstrument(timeout=5)
        assert _comparable(guarded.snapshot()) == _comparable(plain.snapshot())
        if scenario not in {"anonymous", "oversize"}:  # those go to v1 by design
            assert any(request.path == "/api/v2/batch" for request in guarded.requests)
