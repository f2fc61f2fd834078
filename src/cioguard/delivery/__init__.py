"""Background delivery of Customer.io operations: batching, retries, rate limits, spool.

::

    from cioguard.delivery import DeliveryConfig, DeliveryEngine

    engine = DeliveryEngine(DeliveryConfig(max_queue_size=10_000, lanes=4), recorder=recorder)
    engine.submit(op)            # op: cioguard.operations.model.Operation; False = dropped
    engine.flush(timeout=10.0)   # True once everything accepted so far is finished
    engine.shutdown(timeout=10.0)
    engine.stats()

``v2`` operations are joined into ``POST {base_url}/api/v2/batch`` requests (at most
``max_batch_bytes`` and ``max_batch_operations``); ``single`` operations are sent alone. Lanes
(``hash(shard_key) % lanes``) keep several requests in flight without reordering one person's
operations. 2xx delivers, 207 rejects only the listed entries, other 4xx reject, and
408/429/5xx/timeouts/resets are retried with full-jitter backoff (``Retry-After`` as a floor).
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
