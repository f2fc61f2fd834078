"""Record types of the Customer.io emulator (:class:`cioguard.testing.FakeCustomerIO`).

These are plain dataclasses that tests read after driving the emulator::

    person = fake.person("u1")            # Person
    assert person.attributes["plan"] == "pro"
    assert [e.name for e in fake.events] == ["signed_up"]   # Event
    assert fake.requests[-1].status == 200                  # RecordedRequest
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A person reference: (kind, value) with kind one of "id", "email", "cio_id" (value without "cio_").
Ident = tuple[str, str]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the emulator saw it.

    ``status`` is the status sent back, or 0 when no response was sent (connection reset or a stall
    that ended in a dropped connection). The ``Authorization`` header is never stored: ``auth_ok``
    says whether it passed. ``fault`` names the injected fault, if any.
    """

    method: str
    path: str
    status: int
    body: bytes
    arrived_at: float
    auth_ok: bool
    headers: dict[str, str]
    fault: str | None = None


@dataclass
class Device:
    """A device on a person (v1 ``device.id`` and v2 ``device.token`` are both the ``token``)."""

    token: str
    platform: str | None
    last_used: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Person:
    """A person. ``cio_id`` is assigned by the emulator at creation (hex, without ``cio_``)."""

    key: str
    id: str | None
    email: str | None
    cio_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    relationships: list[Any] = field(default_factory=list)
    suppressed: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class Event:
    """An accepted (deduplicated) event, page view or screen view.

    ``person`` is the person's key (see ``FakeCustomerIO.people``), ``None`` for anonymous events.
    ``data`` holds v1 ``data`` and v2 ``attributes`` alike. ``received_at`` is the emulator clock.
    """

    person: str | None
    anonymous_id: str | None
    name: str
    type: str
    data: dict[str, Any]
    id: str | None
    timestamp: Any
    via: str
    received_at: float = 0.0


@dataclass(frozen=True)
class Merge:
    """A merge request: ``primary``/``secondary`` are ``{kind: value}``; ``applied`` if both existed."""

    primary: dict[str, str]
    secondary: dict[str, str]
    via: str
    applied: bool


@dataclass(frozen=True)
class Delivery:
    """A transactional send (App API ``/v1/send/<kind>``) and the ``delivery_id`` answered."""

    kind: str
    payload: dict[str, Any]
    delivery_id: str
    queued_at: int


@dataclass
class TrackObject:
    """A v2 object (``type: "object"``), keyed by ``(object_type_id, object_id)``."""

    object_type_id: str
    object_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    relationships: list[Any] = field(default_factory=list)
    deleted: bool = False
