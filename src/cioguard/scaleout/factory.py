"""Build the Redis backend from ``cioguard.instrument()`` options in one call.

::

    from cioguard.scaleout.factory import build_producer

    sender = build_producer(
        "redis://10.0.0.5:6379/0",           # option queue_url / CIOGUARD_QUEUE_URL
        partitions=8,                        # option queue_partitions (must match the workers)
        fallback="local",                    # option queue_fallback: "local" | "drop"
        config=delivery_config,              # the DeliveryConfig the local engine would get
        recorder=recorder, tracer=tracer, on_response=on_response,
    )
    sender.submit(op); sender.flush(5); sender.shutdown(5); sender.stats()

With ``config.spool_path`` the producer's buffer is spooled until Redis has it (the fallback
engine uses the same file; rows carry their owner, so sharing is safe).
``fallback="local"`` delivers from this process with a :class:`~cioguard.delivery.DeliveryEngine`
built from ``config`` while Redis is unreachable;
``"drop"`` keeps operations in the buffer (``config.max_queue_size``) and drops beyond it.
Raises :class:`ValueError` for an invalid option.
"""

from __future__ import annotations

from typing import Any

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.engine import DeliveryEngine
from cioguard.delivery.sender import ResponseHook
from cioguard.scaleout.connection import Fallback
from cioguard.scaleout.producer import RedisProducer
from cioguard.telemetry.recorder import Recorder

FALLBACKS = ("local", "drop")


def build_producer(
    queue_url: str,
    *,
    partitions: int = 8,
    fallback: str = "local",
    config: DeliveryConfig | None = None,
    recorder: Recorder | None = None,
    tracer: Any = None,
    on_response: ResponseHook | None = None,
    prefix: str = "cioguard",
) -> RedisProducer:
    if not isinstance(queue_url, str) or not queue_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"queue_url must be a redis://, rediss:// or unix:// URL, got {queue_url!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"queue_fallback must be one of {', '.join(FALLBACKS)}; got {fallback!r}")
    config = config or DeliveryConfig()
    engine: Fallback | None = None
    if fallback == "local":
        engine = DeliveryEngine(config, recorder=recorder, tracer=tracer, on_response=on_response)
    return RedisProducer(
        queue_url,
        partitions=partitions,
        max_buffer=config.max_queue_size,
        recorder=recorder,
        fallback=engine,
        prefix=prefix,
        exit_timeout=config.exit_timeout,
        spool_path=config.spool_path,
        spool_max_bytes=config.spool_max_bytes,
    )
