"""Redis connections and the fallback interface of :class:`~cioguard.scaleout.RedisProducer`.

``connect(url)`` returns a ``redis.Redis`` for ``redis://``, ``rediss://`` (TLS) and ``unix://``
URLs with short timeouts, so an unreachable Redis is noticed in seconds, never hangs a thread.
A :class:`Fallback` is anything with the ``DeliveryEngine`` interface.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis

from cioguard.operations.model import Operation


class Fallback(Protocol):
    def submit(self, op: Operation) -> bool: ...
    def flush(self, timeout: float = 10.0) -> bool: ...
    def shutdown(self, timeout: float = 10.0) -> None: ...
    def stats(self) -> dict[str, Any]: ...


def connect(queue_url: str, timeout: float = 2.0) -> redis.Redis:
    """A client for ``redis://`` / ``rediss://`` / ``unix://`` URLs with short timeouts."""
    return redis.Redis.from_url(
        queue_url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
    )
