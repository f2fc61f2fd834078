"""Options of the background delivery engine, validated once at construction.

::

    from cioguard.delivery import DeliveryConfig

    config = DeliveryConfig(max_queue_size=50_000, overflow="drop_oldest", lanes=8)

Every option has a safe default; an invalid value raises :class:`ValueError` naming the option
and the allowed values. The dataclass is frozen: build a new one with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Overflow = Literal["drop_newest", "drop_oldest", "block"]
SpoolSync = Literal["always", "group"]

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
    #: Retries after the first attempt; attempts = ``max_retries + 1``.
    max_retries: int = 3
    #: Requests per second per endpoint (token bucket), and the bucket size.
    rate_limit: float = 100.0
    rate_burst: int = 20
    #: Sender threads; operations are spread by ``hash(shard_key) % lanes`` so one person's
    #: operations always go through the same lane, in order.
    lanes: int = 4
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
    #: ``Retry-After`` is honoured as a floor, clamped to this.
    retry_after_max: float = 60.0
    #: Pause of an endpoint after a 429 without ``Retry-After``.
    rate_limit_pause: float = 1.0

    def __post_init__(self) -> None:
        _choice("overflow", self.overflow, ("drop_newest", "drop_oldest", "block"))
        _choice("spool_sync", self.spool_sync, ("always", "group"))
        _int_min("max_queue_size", self.max_queue_size, 1)
        _int_min("max_batch_operations", self.max_batch_operations, 1)
        _int_min("max_retries", self.max_retries, 0)
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
        for name in ("rate_limit", "request_timeout", "retry_cap"):
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
