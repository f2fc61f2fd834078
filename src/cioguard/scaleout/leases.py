"""Partition leases: each stream partition is consumed by exactly one live worker at a time.

::

    leases = Leases(client, Keys("cioguard"), partitions=8, owner="host-1:4242:ab12", ttl=10.0)
    gained, lost = leases.rebalance()   # call every ttl/3; returns partition numbers
    leases.release(3)                   # after the partition's consumer has stopped
    leases.release_all()

A lease is the key ``{prefix}:lease:{n}`` holding the owner id, set with ``NX PX ttl`` and
renewed (compare-and-expire in Lua) on every ``rebalance``. A worker that stops renewing — it
died, hung, or lost Redis — loses its partitions after ``ttl``; another worker then takes them
and reclaims their pending entries with ``XAUTOCLAIM``. Live workers announce themselves in the
sorted set ``{prefix}:workers`` (score = Redis server time); each keeps at most
``ceil(partitions / live workers)`` leases and gives extras back, so load spreads as workers join.

Why leases rather than plain consumer groups: a consumer group hands entries of one stream to
any consumer, which would reorder one person's operations across workers. Leases keep one
consumer per partition (order preserved) while the group still tracks pending entries.
"""

from __future__ import annotations

import math
import zlib

import redis

from cioguard.scaleout.codec import Keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Leases:
    """The leases one worker holds. Not thread-safe: used by the worker's coordinator thread."""

    def __init__(self, client: redis.Redis, keys: Keys, partitions: int, owner: str, ttl: float) -> None:
        self._client = client
        self._keys = keys
        self._partitions = partitions
        self.owner = owner
        self._ttl_ms = max(1, int(ttl * 1000))
        self.held: set[int] = set()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        # Start probing at a per-owner offset so workers starting together spread out.
        self._offset = zlib.crc32(owner.encode()) % partitions

    def _now_ms(self) -> int:
        seconds, micros = self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def live_workers(self) -> int:
        """Announce this worker and count the live ones (heartbeat within one ttl)."""
        now = self._now_ms()
        key = self._keys.workers()
        pipe = self._client.pipeline(transaction=True)
        pipe.zadd(key, {self.owner: now})
        pipe.zremrangebyscore(key, "-inf", now - self._ttl_ms)
        pipe.zcard(key)
        pipe.pexpire(key, self._ttl_ms * 10)
        results = pipe.execute()
        return max(1, int(results[2]))

    def rebalance(self) -> tuple[set[int], set[int]]:
        """Renew held leases, then take or give back to reach the fair share.

        Returns ``(gained, lost)``. Lost partitions were taken over (our lease had expired): stop
        their consumers at once. Extras above the fair share are *not* released here: the caller
        stops their consumer first, then calls :meth:`release` (see :meth:`surplus`).
        """
        lost = set()
        for partition in sorted(self.held):
            if not self._renew(keys=[self._keys.lease(partition)], args=[self.owner, self._ttl_ms]):
                lost.add(partition)
        self.held -= lost
        fair = math.ceil(self._partitions / self.live_workers())
        gained = set()
        for step in range(self._partitions):
            if len(self.held) >= fair:
                break
            partition = (self._offset + step) % self._partitions
            if partition in self.held:
                continue
            if self._client.set(self._keys.lease(partition), self.owner, nx=True, px=self._ttl_ms):
                self.held.add(partition)
                gained.add(partition)
        return gained, lost

    def surplus(self) -> set[int]:
        """Held partitions above the fair share (the highest-numbered ones first)."""
        fair = math.ceil(self._partitions / self.live_workers())
        extra = len(self.held) - fair
        return set(sorted(self.held, reverse=True)[: max(0, extra)])

    def release(self, partition: int) -> None:
        self.held.discard(partition)
        self._release(keys=[self._keys.lease(partition)], args=[self.owner])

    def release_all(self) -> None:
        for partition in sorted(self.held):
            self.release(partition)
        self._client.zrem(self._keys.workers(), self.owner)
