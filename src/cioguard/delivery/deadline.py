"""A deadline for a whole HTTP request of the default transport, not just for each read.

``requests`` applies its timeout to the connection and to *each* socket read, so a server (or a
proxy) that trickles its answer — a byte every few seconds — keeps a request, and the operations
of the people in it, waiting for as long as it goes on. The transport arms a deadline around each
request; the connection being used reports itself when the request starts; one watchdog thread
shuts that socket down if the deadline passes first, and the blocked read fails at once::

    watch = RequestWatch()
    watch.arm(time.monotonic() + 30.0)       # before adapter.send (this thread)
    ...                                      # urllib3 calls watch.attach(conn) in conn.request()
    expired = watch.disarm()                 # after the body is read: True if it was cut off

:class:`WatchedHTTPConnectionPool` / :class:`WatchedHTTPSConnectionPool` are urllib3 pools whose
connections attach themselves. Nothing here raises into the sender; without a watchdog thread
(none could start) requests simply keep the per-read timeout.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cioguard import forks
from cioguard.threads import daemon_thread

#: A request still not answered in full after this many times ``request_timeout`` is cut off.
WHOLE_REQUEST_FACTOR = 3.0


class RequestWatch:
    """Deadlines of the requests in flight, one per thread; a thread that cuts off late ones."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._local = threading.local()
        self._reset()
        forks.in_child(self._reset)  # the watchdog thread does not survive a fork

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Any]] = []  # (deadline, token, connection)
        self._live: dict[int, bool] = {}  # token -> cut off yet
        self._token = 0
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> None:
        """The next request of this thread must be complete by ``deadline`` (this clock)."""
        self._local.deadline = deadline
        self._local.token = None

    def attach(self, connection: Any) -> None:
        """Called by a watched connection as its request starts (the arming thread)."""
        deadline = getattr(self._local, "deadline", None)
        if deadline is None or getattr(self._local, "token", None) is not None:
            connection._cioguard_token = None  # whatever watched it before, this request is not
            return
        with self._lock:
            self._token += 1
            token = self._local.token = self._token
            # The connection knows its current request: back in the pool and taken by another
            # request (before this one disarmed), it is no longer this token's to cut.
            connection._cioguard_token = token
            self._live[token] = False
            heapq.heappush(self._heap, (deadline, token, connection))
            if not self._started():
                self._live.pop(token, None)
                self._local.token = None
                return
            self._wake.notify()

    def disarm(self) -> bool:
        """This thread's request is over; True when the watchdog cut it off."""
        token = getattr(self._local, "token", None)
        self._local.deadline = self._local.token = None
        if token is None:
            return False
        with self._lock:
            return self._live.pop(token, False)

    def _started(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return True
        try:
            thread = daemon_thread(self._run, "cioguard-request-watch")
            thread.start()
        except Exception:  # no thread (interpreter exit, pids limit): per-read timeouts only
            return False
        self._thread = thread
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > self._clock():
                    self._wake.wait(None if not self._heap else max(0.0, self._heap[0][0] - self._clock()))
                _, token, connection = heapq.heappop(self._heap)
                if token not in self._live:
                    continue  # finished in time
                # Invariant: marked and shut under the lock, so disarm() either came first or
                # sees True; a connection serving another request by now is left alone (an idle
                # one shut here is found dropped by urllib3 and reconnected).
                self._live[token] = True
                if getattr(connection, "_cioguard_token", None) == token:
                    _cut(connection)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down (a blocked read then fails at once). Never raises."""
    sock = getattr(connection, "sock", None)
    # Through an HTTPS proxy urllib3 wraps the socket in an SSLTransport, which has no shutdown().
    raw = sock if hasattr(sock, "shutdown") else getattr(sock, "socket", None)
    if raw is not None:
        with contextlib.suppress(Exception):
            raw.shutdown(socket.SHUT_RDWR)


#: The process's watch (the default transport's connections report to it).
WATCH = RequestWatch()


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        WATCH.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        WATCH.attach(self)
        super().request(*args, **kwargs)


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


#: urllib3 pool classes by scheme, for ``PoolManager.pool_classes_by_scheme``.
WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": WatchedHTTPConnectionPool,
    "https": WatchedHTTPSConnectionPool,
}
