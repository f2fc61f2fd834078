"""Where a runtime's operations go: the local delivery engine, or a Redis Streams producer.

Used by :class:`cioguard.instrumentation.runtime.Runtime` when ``instrument()`` runs::

    sender = build_sender(options, recorder, tracer, on_response)
    sender.submit(op); sender.flush(5.0); sender.stats(); sender.shutdown(10.0)

Both kinds take the same :class:`~cioguard.delivery.DeliveryConfig`, built from the options by
:func:`delivery_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from cioguard.config import Options
from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.delivery.spool import endpoint_resolver
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry import Recorder


class Sender(Protocol):
    """What the runtime hands operations to: the local engine or the Redis producer."""

    def submit(self, op: Operation) -> bool: ...

    def flush(self, timeout: float = ...) -> bool: ...

    def shutdown(self, timeout: float = ...) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def queued(self) -> int: ...


def delivery_config(options: Options) -> DeliveryConfig:
    """The delivery settings among ``instrument()``'s options."""
    return DeliveryConfig(
        max_queue_size=options.max_queue_size,
        overflow=options.overflow,
        flush_interval=options.flush_interval,
        max_batch_bytes=options.max_batch_bytes,
        delivery_timeout=options.delivery_timeout,
        max_retries=options.max_retries,
        spool_max_age=options.spool_max_age,
        on_drop=options.on_drop,
        rate_limit=options.rate_limit,
        request_timeout=options.request_timeout,
        exit_timeout=options.exit_timeout,
        spool_path=options.spool_path,
        spool_sync=options.spool_sync,
    )


def preload_send_path() -> None:
    """Import now, before any sender thread runs, what the send path imports on first use.

    ``requests`` imports ``netrc`` inside every request (``trust_env``); the ``idna`` codec is
    looked up for the first host name. Invariant: no sender thread is inside an import when the
    app forks — a child would inherit that module's import lock, held by a thread it does not
    have, and every request of the child would wait for it forever.
    """
    import encodings.idna  # noqa: F401
    import netrc  # noqa: F401


def build_sender(
    options: Options,
    recorder: Recorder,
    tracer: Any,
    on_response: Callable[[Endpoint, int], None],
) -> Sender:
    """The local delivery engine, or a Redis Streams producer when ``queue_url`` is set."""
    preload_send_path()
    config = delivery_config(options)
    if options.queue_url is None:
        return DeliveryEngine(
            config,
            recorder=recorder,
            tracer=tracer,
            on_response=on_response,
            # Spooled rows of earlier processes go where this process is configured to send.
            resolve_endpoint=endpoint_resolver(options.track_url, options.api_url),
        )
    # Imported only here: the scale-out needs the optional `redis` package.
    from cioguard.scaleout.factory import build_producer

    return build_producer(
        options.queue_url,
        partitions=options.queue_partitions,
        fallback=options.queue_fallback,
        config=config,
        recorder=recorder,
        tracer=tracer,
        on_response=on_response,
    )
