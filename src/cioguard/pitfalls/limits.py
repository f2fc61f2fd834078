"""CIO014: identifiers, attributes and event data over Customer.io's documented limits.

Limits (bytes, UTF-8): person id 150, attribute name 150, attribute value 1000, 300 attributes per
identify call, event name 100 (see :mod:`cioguard.pitfalls.names`), event data 100 000. Sizes are
measured with orjson (a small payload costs well under a microsecond); short strings are never
encoded (a character is at most 4 bytes).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from cioguard.pitfalls.categories import Finding
from cioguard.shapes import safe_name, utf8_len

MAX_ID_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_DATA_BYTES = 100_000


def id_finding(method: str, customer_id: Any) -> Finding | None:
    """A person id over 150 bytes (the id is not printed)."""
    if customer_id is None:
        return None
    text = customer_id if isinstance(customer_id, str) else str(customer_id)
    if len(text) * 4 <= MAX_ID_BYTES:
        return None  # cannot exceed the limit, even with 4-byte characters
    size = utf8_len(text)
    if size <= MAX_ID_BYTES:
        return None
    return Finding(
        "CIO014",
        f"CIO014 customer id in {method}() is over Customer.io's {MAX_ID_BYTES}-byte limit, so the call "
        "is rejected. Use a short stable database id.",
        f"id of {size} bytes",
    )


def json_size(value: Any) -> int:
    """Exact size of ``value`` as compact JSON (UTF-8); unknown types count as their ``str``."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError):
        return len(str(value).encode("utf-8", "surrogatepass"))


def attributes_findings(method: str, attributes: Any) -> list[Finding]:
    """Identify attributes: count, name length and value size."""
    if not isinstance(attributes, dict) or not attributes:
        return []
    findings: list[Finding] = []
    if len(attributes) > MAX_ATTRIBUTES:
        findings.append(
            Finding(
                "CIO014",
                f"CIO014 {method}() sends more attributes than Customer.io keeps ({MAX_ATTRIBUTES} per "
                "person or call). Drop unused attributes or move them into objects.",
                f"{len(attributes)} attributes",
            )
        )
    for key, value in attributes.items():
        name = key if isinstance(key, str) else str(key)
        if len(name) * 4 > MAX_ATTRIBUTE_NAME_BYTES and utf8_len(name) > MAX_ATTRIBUTE_NAME_BYTES:
            findings.append(
                Finding(
                    "CIO014",
                    f"CIO014 an attribute name in {method}() is over the {MAX_ATTRIBUTE_NAME_BYTES}-byte "
                    "limit. Use a short fixed attribute name.",
                    f"attribute name {safe_name(name, 40)} of {utf8_len(name)} bytes",
                )
            )
        if isinstance(value, (int, float, bool)) or value is None:
            continue
        if isinstance(value, str) and len(value) * 4 <= MAX_ATTRIBUTE_VALUE_BYTES:
            continue
        size = utf8_len(value) if isinstance(value, str) else json_size(value)
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            findings.append(
                Finding(
                    "CIO014",
                    f"CIO014 an attribute value in {method}() is over {MAX_ATTRIBUTE_VALUE_BYTES} bytes, "
                    "and Customer.io drops such values. Store large content elsewhere and send a "
                    "reference.",
                    f"attribute {safe_name(name, 40)}: {size} bytes",
                )
            )
    return findings


def data_size(data: Any) -> int:
    """Bytes of ``data`` as JSON, exact for JSON types (orjson: about 0.1 µs for a small dict)."""
    try:
        return len(orjson.dumps(data))
    except TypeError:  # a type orjson cannot encode (Decimal, non-str keys …): the slow, tolerant path
        return json_size(data)


def event_data_finding(method: str, data: Any) -> Finding | None:
    """Event data over 100 000 bytes."""
    if not isinstance(data, dict) or not data:
        return None
    size = data_size(data)
    if size <= MAX_EVENT_DATA_BYTES:
        return None
    return data_size_finding(method, size)


def data_size_finding(method: str, size: int) -> Finding:
    """The CIO014 finding for ``size`` bytes of event data."""
    return Finding(
        "CIO014",
        f"CIO014 event data in {method}() is over Customer.io's {MAX_EVENT_DATA_BYTES}-byte limit, so "
        "the event is rejected. Send ids and small fields, not documents.",
        f"event data of {size} bytes",
    )
