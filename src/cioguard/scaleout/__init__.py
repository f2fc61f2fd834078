"""Scale delivery out over Redis Streams: producers hand operations over, workers deliver them.

::

    # in the application (the lead wires this to cioguard.instrument(queue_url=...))
    from cioguard.scaleout import RedisProducer
    producer = RedisProducer("redis://10.0.0.5:6379/0", partitions=8)

    # on any number of hosts
    $ cioguard worker --redis redis://10.0.0.5:6379/0 --partitions 8 --metrics-port 9464

- :mod:`cioguard.scaleout.producer` — :class:`RedisProducer` (``DeliveryEngine``'s interface);
- :mod:`cioguard.scaleout.worker` — ``cioguard worker`` and :class:`Worker`;
- :mod:`cioguard.scaleout.leases` — one consumer per partition (per-person order);
- :mod:`cioguard.scaleout.ratelimit` — the global token bucket and 429 pause (Lua);
- :mod:`cioguard.scaleout.codec` — key names, partitioning and the entry format.

Needs the ``redis`` extra (``pip install cioguard[redis]``). Stream entries carry the
``Authorization`` header of each operation: protect the Redis instance like the spool file.
Run Redis with ``appendonly yes``: with ``appendfsync everysec`` a Redis crash loses at most the
last second of handed-over operations (a clean restart loses none).
"""

from cioguard.scaleout.connection import Fallback
from cioguard.scaleout.producer import RedisProducer
from cioguard.scaleout.worker import Worker

__all__ = ["Fallback", "RedisProducer", "Worker"]
