"""The emulator's normalised state model, shared by the v1, v2 and App API handlers.

v1 paths and v2 entries are both translated into the calls below, so a session sent over either
transport ends in the same state (compare :meth:`Store.snapshot`). Identifier semantics follow
Customer.io: a v1 path value starting with ``cio_`` is a ``cio_id``, one containing ``@`` is an
``email`` (case-insensitive), anything else an ``id`` (see :func:`classify`).

People are keyed by the identifier that created them: the ``id``, else the lower-cased ``email``.
A person referenced only by an unknown ``cio_id`` is never created (``unresolved`` is counted).
Not thread-safe by itself: the emulator calls it under its own lock.
"""

from __future__ import annotations

from typing import Any

from cioguard.testing.records import Delivery, Device, Event, Ident, Merge, Person, TrackObject

RESERVED_NOT_STORED = frozenset({"_update", "_timestamp", "cio_relationships"})


def classify(value: str) -> Ident:
    """The identifier kind of a v1 path value (``cio_…`` / email-shaped / id)."""
    if value.startswith("cio_"):
        return ("cio_id", value[4:])
    if "@" in value:
        return ("email", value)
    return ("id", value)


class Store:
    """People, events, devices, merges, objects and transactional sends."""

    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.events: list[Event] = []
        self.merges: list[Merge] = []
        self.deliveries: list[Delivery] = []
        self.objects: dict[tuple[str, str], TrackObject] = {}
        self.delivery_events: list[dict[str, Any]] = []
        self.duplicate_events = 0
        self.unresolved = 0
        self._event_ids: set[str] = set()
        self._by_id: dict[str, Person] = {}
        self._by_email: dict[str, Person] = {}
        self._by_cio: dict[str, Person] = {}
        self._next_cio = 0

    # -- people ---------------------------------------------------------------------------------
    def find(self, ident: Ident) -> Person | None:
        kind, value = ident
        if kind == "id":
            return self._by_id.get(value)
        if kind == "email":
            return self._by_email.get(value.lower())
        value = value[4:] if value.startswith("cio_") else value
        return self._by_cio.get(value)

    def lookup(self, identifier: str) -> Person | None:
        """A person by id, email or cio_id (with or without the ``cio_`` prefix)."""
        for ident in (("id", identifier), ("email", identifier), ("cio_id", identifier)):
            person = self.find(ident)
            if person is not None:
                return person
        return None

    def _resolve(self, ident: Ident, create: bool = True) -> Person | None:
        person = self.find(ident)
        if person is not None or not create:
            return person
        kind, value = ident
        if kind == "cio_id":
            self.unresolved += 1
            return None
        self._next_cio += 1
        key = value if kind == "id" else value.lower()
        while key in self.people:  # an id that looks like another person's email: keep keys unique
            key += "#"
        person = Person(key=key, id=None, email=None, cio_id=f"{self._next_cio:012x}")
        self.people[key] = person
        self._by_cio[person.cio_id] = person
        self._set_id(person, value) if kind == "id" else self._set_email(person, value)
        return person

    def _set_id(self, person: Person, value: str) -> None:
        if person.id is not None and self._by_id.get(person.id) is person:
            del self._by_id[person.id]
        person.id = value
        self._by_id[value] = person

    def _set_email(self, person: Person, value: str) -> None:
        if person.email is not None and self._by_email.get(person.email.lower()) is person:
            del self._by_email[person.email.lower()]
        person.email = value
        self._by_email[value.lower()] = person

    def _touch(self, ident: Ident) -> Person | None:
        """Resolve (creating if needed) and un-delete: later calls recreate a deleted person."""
        person = self._resolve(ident)
        if person is not None and person.deleted:
            person.deleted = False
        return person

    def identify(self, ident: Ident, attributes: dict[str, Any]) -> None:
        if attributes.get("_update") is True and self.find(ident) is None:
            return  # `_update: true` never creates a person
        person = self._touch(ident)
        if person is None:
            return
        for name, value in attributes.items():
            if name in RESERVED_NOT_STORED:
                continue
            person.attributes[name] = value
        if isinstance(attributes.get("id"), str | int) and str(attributes["id"]) != person.id:
            self._set_id(person, str(attributes["id"]))
        if isinstance(attributes.get("email"), str) and attributes["email"] != person.email:
            self._set_email(person, attributes["email"])
        relationships = attributes.get("cio_relationships")
        if isinstance(relationships, dict) and isinstance(relationships.get("relationships"), list):
            if relationships.get("action") == "delete":
                self.delete_relationships(ident, relationships["relationships"])
            else:
                self.add_relationships(ident, relationships["relationships"])

    def delete(self, ident: Ident) -> None:
        person = self._resolve(ident, create=False)
        if person is not None:
            person.deleted = True
            person.attributes.clear()
            person.devices.clear()

    def suppress(self, ident: Ident, suppressed: bool) -> None:
        person = self._resolve(ident, create=suppressed)
        if person is not None:
            person.suppressed = suppressed

    def add_device(self, ident: Ident, device: Device) -> None:
        person = self._touch(ident)
        if person is not None:
            person.devices[device.token] = device

    def delete_device(self, ident: Ident, token: str) -> None:
        person = self._resolve(ident, create=False)
        if person is not None:
            person.devices.pop(token, None)

    def add_relationships(self, ident: Ident, relationships: list[Any]) -> None:
        person = self._touch(ident)
        if person is not None:
            person.relationships.extend(r for r in relationships if r not in person.relationships)

    def delete_relationships(self, ident: Ident, relationships: list[Any]) -> None:
        person = self._resolve(ident, create=False)
        if person is not None:
            person.relationships = [r for r in person.relationships if r not in relationships]

    def merge(self, primary: Ident, secondary: Ident, via: str) -> None:
        """Merge secondary into primary (both must exist); the primary's attributes win."""
        first, second = self.find(primary), self.find(secondary)
        applied = first is not None and second is not None and first is not second
        self.merges.append(Merge({primary[0]: primary[1]}, {secondary[0]: secondary[1]}, via, applied))
        if first is None or second is None or first is second:
            return
        first.attributes = {**second.attributes, **first.attributes}
        first.devices = {**second.devices, **first.devices}
        self.events = [_rekey(e, second.key, first.key) for e in self.events]
        del self.people[second.key]
        for index in (self._by_id, self._by_email, self._by_cio):
            for name in [name for name, p in index.items() if p is second]:
                del index[name]

    # -- events ---------------------------------------------------------------------------------
    def event(self, ident: Ident | None, anonymous_id: str | None, fields: dict[str, Any]) -> None:
        """Record an event unless its ``id`` repeats (then count it in ``duplicate_events``)."""
        event_id = fields.get("id")
        if event_id is not None:
            if str(event_id) in self._event_ids:
                self.duplicate_events += 1
                return
            self._event_ids.add(str(event_id))
        key = None
        if ident is not None:
            person = self._touch(ident)
            if person is None:
                return
            key = person.key
        self.events.append(
            Event(
                person=key,
                anonymous_id=anonymous_id,
                name=fields["name"],
                type=fields.get("type") or "event",
                data=dict(fields.get("data") or {}),
                id=None if event_id is None else str(event_id),
                timestamp=fields.get("timestamp"),
                via=fields["via"],
                received_at=fields.get("received_at", 0.0),
            )
        )

    # -- objects, deliveries ----------------------------------------------------------------------
    def object_action(self, identifiers: dict[str, Any], action: str, entry: dict[str, Any]) -> None:
        key = (str(identifiers["object_type_id"]), str(identifiers["object_id"]))
        obj = self.objects.setdefault(key, TrackObject(*key))
        if action in {"identify", "identify_anonymous"}:
            obj.deleted = False
            obj.attributes.update(entry.get("attributes") or {})
        elif action == "delete":
            obj.deleted = True
            obj.attributes.clear()
        elif action == "add_relationships":
            obj.relationships.extend(entry.get("cio_relationships") or [])
        elif action == "delete_relationships":
            gone = entry.get("cio_relationships") or []
            obj.relationships = [r for r in obj.relationships if r not in gone]

    def snapshot(self) -> dict[str, Any]:
        """A canonical, transport-independent view (no arrival times, no request details)."""
        people: dict[str, Any] = {}
        for key, person in self.people.items():
            people[key] = {
                "id": person.id,
                "email": person.email,
                "attributes": dict(person.attributes),
                "devices": {
                    token: {
                        "platform": d.platform,
                        "last_used": d.last_used,
                        "attributes": dict(d.attributes),
                    }
                    for token, d in person.devices.items()
                },
                "relationships": list(person.relationships),
                "suppressed": person.suppressed,
                "deleted": person.deleted,
                "events": [_event_view(e) for e in self.events if e.person == key],
            }
        return {
            "people": people,
            "anonymous_events": [
                {"anonymous_id": e.anonymous_id, **_event_view(e)} for e in self.events if e.person is None
            ],
            "merges": [{"primary": m.primary, "secondary": m.secondary} for m in self.merges],
            "objects": {
                f"{k[0]}/{k[1]}": {"attributes": dict(o.attributes), "deleted": o.deleted}
                for k, o in self.objects.items()
            },
            "deliveries": [{"kind": d.kind, "payload": d.payload} for d in self.deliveries],
            "duplicate_events": self.duplicate_events,
        }


def _event_view(event: Event) -> dict[str, Any]:
    return {
        "name": event.name,
        "type": event.type,
        "data": event.data,
        "timestamp": event.timestamp,
        "id": event.id,
    }


def _rekey(event: Event, old: str, new: str) -> Event:
    if event.person != old:
        return event
    return Event(
        new,
        event.anonymous_id,
        event.name,
        event.type,
        event.data,
        event.id,
        event.timestamp,
        event.via,
        event.received_at,
    )
