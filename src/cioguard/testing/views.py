"""What the emulator recorded, as tests read it (a mixin of
:class:`~cioguard.testing.emulator.FakeCustomerIO`).

Every view copies under the emulator's lock, so a test may read while requests arrive::

    fake.people["u1"].attributes      # people by id
    fake.person("u1@example.com")     # by id, email (any case) or cio_id
    fake.events, fake.deliveries, fake.merges, fake.suppressions, fake.duplicate_events
    fake.stats()                      # request counts by status, operations, faults injected
    fake.snapshot()                   # canonical state, transport-independent
    fake.wait_for(lambda: len(fake.events) == 3, timeout=5)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from cioguard.testing.faults import FaultPlan
from cioguard.testing.records import Delivery, Event, Merge, Person, RecordedRequest
from cioguard.testing.server import EmulatorServer
from cioguard.testing.state import Store


class EmulatorViews:
    """Read-only views of the emulator's state, plus ``reset`` and ``wait_for``."""

    _lock: threading.Lock
    _store: Store
    _log: list[RecordedRequest]
    _counts: Counter[str]
    _faults: FaultPlan
    _server: EmulatorServer | None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def people(self) -> dict[str, Person]:
        with self._lock:
            return dict(self._store.people)

    def person(self, identifier: str) -> Person | None:
        """The person with this id, email (any case) or cio_id (with or without ``cio_``)."""
        with self._lock:
            return self._store.lookup(identifier)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._store.events)

    @property
    def duplicate_events(self) -> int:
        with self._lock:
            return self._store.duplicate_events

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._store.deliveries)

    @property
    def merges(self) -> list[Merge]:
        with self._lock:
            return list(self._store.merges)

    @property
    def suppressions(self) -> set[str]:
        """Keys of the people currently suppressed."""
        with self._lock:
            return {key for key, person in self._store.people.items() if person.suppressed}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = self._counts
            by_status = {int(name[7:]): n for name, n in counts.items() if name.startswith("status_") and n}
            return {
                "requests": counts["requests"],
                "connections": 0 if self._server is None else self._server.accepted,
                "by_status": by_status,
                "bytes_received": counts["bytes_received"],
                "operations": counts["operations"],
                "events": counts["events"],
                "invalid_entries": counts["invalid_entries"],
                "deliveries": counts["deliveries"],
                "duplicate_events": self._store.duplicate_events,
                "people": len(self._store.people),
                "unresolved": self._store.unresolved,
                "faults": dict(self._faults.injected),
                "faults_injected": sum(self._faults.injected.values()),
            }

    def snapshot(self) -> dict[str, Any]:
        """Canonical, transport-independent state (see :meth:`cioguard.testing.state.Store.snapshot`)."""
        with self._lock:
            return self._store.snapshot()

    def state(self) -> dict[str, Any]:
        """What arrived, for people: ``snapshot()`` plus ``counts`` (``stats()``), JSON-ready.

        Served at ``GET /__emulator/state`` and written by ``cioguard emulator --record FILE``."""
        view = self.snapshot()
        view["counts"] = self.stats()
        # Round-trip through orjson so the value is plain JSON whatever the payloads held.
        result: dict[str, Any] = orjson.loads(orjson.dumps(view, default=str, option=orjson.OPT_NON_STR_KEYS))
        return result

    def reset(self) -> None:
        """Forget state, the request log, counters, faults, chaos and the rate limit."""
        with self._lock:
            self._store = Store()
            self._log.clear()
            self._counts.clear()
            self._faults.clear()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll ``predicate()`` every 5 ms for up to ``timeout`` real seconds; its last truth value."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(0.005)
        return True
