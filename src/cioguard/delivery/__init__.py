"""Background delivery of Customer.io operations: batching, retries, rate limits, spool.

::

    from cioguard.delivery import DeliveryConfig, DeliveryEngine

    engine = DeliveryEngine(DeliveryConfig(max_queue_size=10_000, lanes=4), recorder=recorder)
    engine.submit(op)            # op: cioguard.operations.model.Operation; False = dropped
    engine.flush(timeout=10.0)   # True once everything accepted so far is finished
    engine.shutdown(timeout=10.0)
    engine.stats()

``submit`` is a lock-free append; sender threads (``lanes``) take operations in, keep a FIFO per
person (and per anonymous id) and join ``v2`` operations of many people into
``POST {base_url}/api/v2/batch`` requests (at most ``max_batch_bytes`` and
``max_batch_operations``), while v1-only operations go alone; a person is never in flight twice,
so their operations arrive in order. A due batch goes before v1-only operations, which leave one
sender free for batches; callers outpacing the sender give it the GIL above half full and pause
1-50 ms from 7/8 full unless an endpoint is in outage mode (backpressure before
``overflow``). 2xx delivers (entries listed under ``errors`` are rejected),
other 4xx reject, 429 waits ``Retry-After`` without counting an attempt, and 408/5xx/timeouts/
resets/refusals are retried with full-jitter backoff until ``delivery_timeout``; after repeated
failures an endpoint goes into outage mode (one probe at a time). Modules: ``engine`` (API and
lifecycle), ``state``/``dispatch`` (intake and sender threads), ``scheduler``/``entries``
(per-person scheduling), ``policy`` (pure retry/outage rules), ``sender``/``wire``/``transport``
(requests), ``outcomes`` (counters, metrics, ``on_drop``), ``durable`` (the spool glue).
This package knows nothing of the SDK: it only takes :class:`~cioguard.operations.model.Operation`.
"""

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.engine import DeliveryEngine
from cioguard.delivery.transport import RequestsTransport, Transport, TransportError, TransportResponse

__all__ = [
    "DeliveryConfig",
    "DeliveryEngine",
    "RequestsTransport",
    "Transport",
    "TransportError",
    "TransportResponse",
]
