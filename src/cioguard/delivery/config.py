"""Options of the background delivery engine, validated once at construction.

::

    from cioguard.delivery import DeliveryConfig

    config = DeliveryConfig(max_queue_size=50_000, overflow="drop_oldest", lanes=8)

Every option has a safe default; an invalid value raises :class:`ValueError` naming the option
and the allowed values. The dataclass is frozen: build a new one with ``dataclasses.replace``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Overflow = Literal["drop_newest", "drop_oldest", "block"]
SpoolSync = Literal["always", "group"]
#: ``on_drop(reason, count, methods)``: ``methods`` maps SDK method names to counts (no payloads).
DropHook = Callable[[str, int, Mapping[str, int]], object]

#: ``len(b'{"batch":[') + len(b']}')``: the envelope around the joined v2 entries.
ENVELOPE_BYTES = 12
#: Customer.io rejects ``/api/v2/batch`` requests of 500 KB or more.
REQUEST_LIMIT_BYTES = 500_000


@dataclass(frozen=True)
class DeliveryConfig:
    """How the engine queues, batches, retries and stops. Times are seconds."""

    #: Operations accepted but not yet delivered or finally failed (queue + in flight).
    max_queue_size: int = 10_000
    #: What ``submit`` does when the queue is full.
    overflow: Overflow = "drop_newest"
    #: A partial batch waits at most this long before it is sent.
    flush_interval: float = 1.0
    #: Request size cap for ``/api/v2/batch``, envelope included (must stay below 500 KB).
    max_batch_bytes: int = 450_000
    #: Entries per ``/api/v2/batch`` request (the real count limit is undocumented).
    max_batch_operations: int = 2_000
    #: An operation is retried until it is this old, then dropped as ``expired``; 429 waits and
    #: outages count only as time. With a spool, ``spool_max_age`` is the patience instead.
    delivery_timeout: float = 600.0
    #: Optional extra bound: failed attempts (429s not counted) after the first; None = unbounded.
    max_retries: int | None = None
    #: With a spool: rows older than this are dropped as ``expired``; before that nothing
    #: transient (failure, outage, shutdown, exit) deletes them.
    spool_max_age: float = 7 * 24 * 3600.0
    #: Told of every drop (reason, count, {method: count}); its errors are logged, never raised.
    on_drop: DropHook | None = field(default=None, compare=False)
    #: Requests per second per endpoint (token bucket), and the bucket size.
    rate_limit: float = 100.0
    rate_burst: int = 20
    #: Sender threads (requests in flight at once). One person's operations are never in flight
    #: twice at the same time, so they arrive in the order they were accepted.
    lanes: int = 6
    request_timeout: float = 10.0
    #: Deadline of the flush at interpreter exit.
    exit_timeout: float = 5.0
    #: With ``overflow="block"``: how long ``submit`` may wait for room before dropping.
    block_timeout: float = 1.0
    spool_path: str | None = None
    spool_sync: SpoolSync = "group"
    spool_max_bytes: int = 256 * 1024 * 1024
    #: Full-jitter exponential backoff: ``uniform(0, min(retry_cap, retry_base * 2**n))``.
    retry_base: float = 0.5
    retry_cap: float = 30.0
    #: ``Retry-After`` is honoured as a floor, clamped to this: half of ``delivery_timeout``'s
    #: default, so a bogus day-long value still leaves time for a try after the wait (a failed
    #: batch's wait is also cut to end before its oldest operation expires: dispatch._failed).
    retry_after_max: float = 300.0
    #: Pause of an endpoint after a 429 without ``Retry-After``.
    rate_limit_pause: float = 1.0

    def __post_init__(self) -> None:
        _choice("overflow", self.overflow, ("drop_newest", "drop_oldest", "block"))
        _choice("spool_sync", self.spool_sync, ("always", "group"))
        _int_min("max_queue_size", self.max_queue_size, 1)
        _int_min("max_batch_operations", self.max_batch_operations, 1)
        if self.max_retries is not None:
            _int_min("max_retries", self.max_retries, 0)
        if self.on_drop is not None and not callable(self.on_drop):
            raise ValueError(
                f"on_drop must be a callable(reason, count, methods) or None, got {self.on_drop!r}"
            )
        _int_min("rate_burst", self.rate_burst, 1)
        _int_min("lanes", self.lanes, 1)
        _int_min("spool_max_bytes", self.spool_max_bytes, 0)
        if not isinstance(self.max_batch_bytes, int) or not (
            ENVELOPE_BYTES < self.max_batch_bytes < REQUEST_LIMIT_BYTES
        ):
            raise ValueError(
                f"max_batch_bytes must be an int between {ENVELOPE_BYTES + 1} and "
                f"{REQUEST_LIMIT_BYTES - 1}, got {self.max_batch_bytes!r}"
            )
        for name in ("rate_limit", "request_timeout", "retry_cap", "delivery_timeout", "spool_max_age"):
            _positive(name, getattr(self, name))
        for name in (
            "flush_interval",
            "exit_timeout",
            "block_timeout",
            "retry_base",
            "retry_after_max",
            "rate_limit_pause",
        ):
            _non_negative(name, getattr(self, name))
        if self.spool_path is not None and not isinstance(self.spool_path, str):
            raise ValueError(f"spool_path must be a file path string or None, got {self.spool_path!r}")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _int_min(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _positive(name: str, value: object) -> None:
    if not _number(value) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a number > 0, got {value!r}")


def _non_negative(name: str, value: object) -> None:
    if not _number(value) or not value >= 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
