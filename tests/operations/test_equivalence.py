"""Equivalence against the emulator: the SDK's v1 requests and our operations end in the same state.

Each scenario runs twice on fresh emulator state: once through the real SDK (v1 paths), once as
the operations :func:`build` makes, POSTed with ``requests`` (v2 entries joined into
``{"batch": [...]}``, ``route="single"`` operations as their own request, in call order). The
emulator (:mod:`cioguard.testing`) shares no code with :mod:`cioguard.operations`, so a mapping
mistake cannot hide by being made on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

import cioguard.testing as testing
from cioguard.operations.build import V2_ENTRY_LIMIT, build, track_endpoint
from cioguard.operations.calls import bind
from cioguard.operations.model import Operation

Step = tuple[str, tuple[Any, ...], dict[str, Any]]
CET = timezone(timedelta(hours=2))
AT = datetime(2024, 5, 1, 9, 0, tzinfo=CET)

SCENARIOS: dict[str, list[Step]] = {
    "identify": [
        ("identify", ("u1",), {"email": "u1@example.com", "plan": "pro", "created_at": AT}),
        (
            "identify",
            ("u1",),
            {"nested": {"a": [1, {"b": AT}]}, "score": float("nan"), "_timestamp": 1700000000},
        ),
        ("identify", ("u2@example.com",), {"first_name": "Ann"}),
        ("identify", ("cio_000000000001",), {"email": "changed@example.com"}),  # u1, by cio_id
        ("identify", (42,), {"_update": False}),
        ("identify", ("ghost",), {"_update": True}),
    ],
    "events": [
        ("identify", ("u1",), {"email": "u1@example.com"}),
        ("track", ("u1", "purchase"), {"data": {"price": 9.5, "at": AT, "tags": ["a"]}}),
        ("track", ("u1", "ms"), {"timestamp": 1700000000123}),
        ("track", ("u1", "dt"), {"timestamp": AT, "data": None}),
        ("track", ("u1", "str"), {"timestamp": "1700000000"}),
        ("track", ("u1", "bad"), {"timestamp": "yesterday"}),
        ("track", ("u1@example.com", "by email"), {"data": {"k": 1}}),
        ("track", ("new-person", "creates"), {}),
        ("pageview", ("u1", "/pricing"), {"referrer": "https://example.com", "at": AT}),
        ("backfill", ("u1", "old", AT), {"k": "v"}),
        ("backfill", ("u1", "old2", "1600000000"), {}),
        ("track", ("u1", "  padded  "), {}),
    ],
    "non_string_keys": [  # json (the SDK) writes int/float/bool/None keys as strings
        ("identify", ("k9",), {"email": "k9@example.com", "cart": {101: 2, 1.5: "half", True: "yes"}}),
        ("track", ("k9", "cart_updated"), {"data": {"qty_by_sku": {101: 2, None: 0}, "at": {3: AT}}}),
    ],
    "anonymous": [
        ("track_anonymous", ("anon-1", "viewed"), {"data": {"page": "/"}, "timestamp": AT}),
        ("track_anonymous", ("", "invite"), {"data": {"recipient": "x@example.com"}}),
        ("track_anonymous", (None, "invite2"), {}),
    ],
    "devices": [
        ("identify", ("u1",), {}),
        ("add_device", ("u1", "tok-1", "ios"), {}),
        ("add_device", ("u1", "tok-2", "android"), {"last_used": AT, "attributes": {"app_version": "1.2"}}),
        ("add_device", ("u1", "tok-3", "ios"), {"device_os": "17", "attributes": {"app_version": "2"}}),
        ("add_device", ("u1", "tok-4", "ios"), {"id": "ignored"}),
        ("delete_device", ("u1", "tok-1"), {}),
        ("delete_device", ("u1", "tok/with+chars"), {}),
    ],
    "lifecycle": [
        ("identify", ("u1",), {"email": "u1@example.com", "a": 1}),
        ("identify", ("u2",), {"email": "u2@example.com", "b": 2}),
        ("identify", ("u3",), {}),
        ("merge_customers", ("id", "u1", "email", "u2@example.com"), {}),
        ("merge_customers", ("cio_id", "000000000003", "id", "nobody"), {}),
        ("suppress", ("u3",), {}),
        ("unsuppress", ("u3",), {}),
        ("suppress", ("never-seen",), {}),
        ("delete", ("u1",), {}),
        ("track", ("u1", "recreates"), {}),
        ("delete", ("missing",), {}),
    ],
    "batch": [
        (
            "batch",
            (
                [
                    {
                        "type": "person",
                        "action": "identify",
                        "identifiers": {"id": "b1"},
                        "attributes": {"x": AT},
                    },
                    {
                        "type": "person",
                        "action": "event",
                        "identifiers": {"id": "b1"},
                        "name": "e",
                        "attributes": {},
                    },
                    {
                        "type": "object",
                        "action": "identify",
                        "identifiers": {"object_type_id": "1", "object_id": "o"},
                    },
                ],
            ),
            {},
        ),
    ],
    "realistic": [  # what apps send: nesting, None, datetimes, ISO strings, unicode, email lanes
        ("identify", ("u7",), {"email": "Zoe@Example.com", "name": "Zoë Müller", "referrer": None}),
        (
            "track",
            ("u7", "order_completed"),
            {
                "data": {
                    "order_id": "A-10023",
                    "total": 129.9,
                    "coupon": None,
                    "placed_at": "2024-05-01T10:20:30Z",
                    "shipped_at": AT,
                    "items": [{"sku": "sku-1", "name": "Café ☕", "qty": 2, "discount": None}],
                    "shipping": {"address": {"city": "Zürich", "line2": None}},
                }
            },
        ),
        ("track", ("zoe@example.com", "by_email"), {"data": {"coupon": None, "at": AT}}),
        ("pageview", ("u7", "/checkout"), {"items": [{"sku": "a", "discount": None}], "at": AT}),
    ],
    "oversize": [
        ("identify", ("big",), {"blob": "x" * (V2_ENTRY_LIMIT + 100)}),
        ("track", ("big", "large"), {"data": {"blob": "y" * (V2_ENTRY_LIMIT + 100)}}),
    ],
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[Any, Any]]:
    with testing.FakeCustomerIO(https=True) as through_sdk, testing.FakeCustomerIO(https=True) as through_ops:
        yield through_sdk, through_ops


def _operations(steps: list[Step], endpoint: Any) -> list[tuple[Step, list[Operation]]]:
    return [(step, build(bind(step[0], step[1], step[2]), endpoint)) for step in steps]


def _run_sdk(fake: Any, planned: list[tuple[Step, list[Operation]]]) -> None:
    client = fake.client()
    try:
        for (method, args, kwargs), operations in planned:
            if method in ("track", "track_anonymous") and "id" not in kwargs:
                # Give the SDK the ULID cioguard chose, so the snapshots agree on event ids too.
                kwargs = {**kwargs, "id": operations[0].event_id}
            getattr(client, method)(*args, **kwargs)
    finally:
        client.close()


def _post_operations(fake: Any, endpoint: Any, operations: list[Operation]) -> None:
    headers = {"Authorization": endpoint.auth_header, "Content-Type": "application/json"}
    pending: list[bytes] = []

    def send(method: str, path: str, body: bytes) -> None:
        response = session.request(method, fake.track_url + path, data=body, headers=headers, timeout=10)
        assert response.status_code == 200, (path, response.status_code, response.text)

    def flush() -> None:
        if pending:
            send("POST", "/api/v2/batch", b'{"batch":[' + b",".join(pending) + b"]}")
            pending.clear()

    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify; no proxies on loopback
        session.verify = fake.ca_bundle
        for operation in operations:
            if operation.route == "v2":
                pending.append(operation.body)
            else:
                flush()  # keep call order across routes
                send(operation.http_method, operation.path, operation.body)
        flush()


def _without_event_ids(snapshot: dict[str, Any]) -> dict[str, Any]:
    for person in snapshot["people"].values():
        for event in person["events"]:
            event["id"] = None
    for event in snapshot["anonymous_events"]:
        event["id"] = None
    return snapshot


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_v2_operations_reach_the_same_state_as_the_sdk(fakes: tuple[Any, Any], scenario: str) -> None:
    through_sdk, through_ops = fakes
    through_sdk.reset()
    through_ops.reset()
    endpoint = track_endpoint(through_ops.site_id, through_ops.api_key, through_ops.track_url)
    planned = _operations(SCENARIOS[scenario], endpoint)
    _run_sdk(through_sdk, planned)
    operations = [operation for _, ops in planned for operation in ops]
    _post_operations(through_ops, endpoint, operations)

    expected, actual = through_sdk.snapshot(), through_ops.snapshot()
    ids_given = not any(method in ("pageview", "backfill", "batch") for (method, _, _), _ in planned)
    if not ids_given:  # no id to hand to the SDK for these; cioguard always adds one
        expected, actual = _without_event_ids(expected), _without_event_ids(actual)
    assert actual == expected
    assert through_ops.stats()["invalid_entries"] == 0
    if scenario == "oversize":
        assert [op.route for op in operations] == ["single", "single"]
    elif scenario != "anonymous":
        assert "v2" in {op.route for op in operations}
