"""``FakeCustomerIO``: a local Customer.io emulator (Track API v1 + v2 and App API) for tests.

Start it as a context manager (or use the ``fake_customerio`` pytest fixture) and point the real
SDK, or anything else that speaks HTTP, at it::

    from cioguard.testing import FakeCustomerIO

    with FakeCustomerIO() as fake:                 # HTTPS with a throw-away CA (needs trustme)
        cio = fake.client()                        # customerio.CustomerIO trusting that CA
        cio.identify("u1", email="u1@example.com")
        cio.track("u1", "signed_up", id="01HZX0000000000000000000AA")
        assert fake.person("u1@example.com").id == "u1"
        assert [e.name for e in fake.events] == ["signed_up"]
        fake.fail_next(2, status=503)              # the SDK retries 5xx: this call still succeeds
        cio.track("u1", "paid")

Everything is recorded under one lock: ``requests`` (raw log, never the Authorization value),
``people``, ``events`` (deduplicated by event ``id``), ``merges``, ``deliveries``, ``stats()`` and the
transport-independent ``snapshot()``. ``store=False`` is a sink for benchmarks: requests are parsed,
validated and counted, nothing else is kept. Faults: see :mod:`cioguard.testing.faults`.

For people checking an app by hand: ``GET /__emulator/state`` answers :meth:`FakeCustomerIO.state`
as JSON (people, events, deliveries, counts; no credentials, not counted as a request), and
``on_request`` is called once per request with a :class:`RequestSummary` (what ``cioguard emulator``
prints, one line each). ``FakeCustomerIO(mount="/cio")`` serves the APIs under a path, as a gateway
does (``client()`` then passes the SDK ``url_prefix="/cio/api/v1"``; ``track_url`` ends in ``/cio``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cioguard.testing.certs import TestCertificates, ca_environment, make_trusting
from cioguard.testing.faults import Fault, FaultControls, FaultPlan
from cioguard.testing.records import RecordedRequest
from cioguard.testing.reply import Context, Reply
from cioguard.testing.routing import Router
from cioguard.testing.server import Connection, EmulatorServer, Incoming
from cioguard.testing.state import Store
from cioguard.testing.views import EmulatorViews

#: Path of the state endpoint (outside every Customer.io API path; never needs credentials).
STATE_PATH = "/__emulator/state"


@dataclass(frozen=True)
class RequestSummary:
    """One request as ``cioguard emulator`` logs it: never the Authorization header or the body."""

    method: str
    path: str
    status: int
    operations: int
    seconds: float
    fault: str | None

    def line(self) -> str:
        """``POST /api/v2/batch -> 200  ops=37  3.1 ms`` (plus ``fault=…`` when one was injected)."""
        status = str(self.status) if self.status else "no response"
        text = f"{self.method} {self.path} -> {status}  ops={self.operations}  {self.seconds * 1000:.1f} ms"
        return text if self.fault is None else f"{text}  fault={self.fault}"


class FakeCustomerIO(FaultControls, EmulatorViews):
    """The emulator; see the module docstring. Not started until ``start()`` / ``with``."""

    def __init__(
        self,
        https: bool = True,
        site_id: str = "site-id",
        api_key: str = "track-key",
        app_key: str = "app-key",
        latency: float = 0.0,
        store: bool = True,
        clock: Callable[[], float] = time.monotonic,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        wall_clock: Callable[[], float] = time.time,
        on_request: Callable[[RequestSummary], None] | None = None,
        mount: str = "",
    ) -> None:
        self.https, self.site_id, self.api_key, self.app_key = https, site_id, api_key, app_key
        self.latency = latency  # seconds added to every request; may be changed at runtime
        self.store = store
        self._clock, self._wall_clock = clock, wall_clock
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._router = Router(site_id, api_key, app_key)
        self._store = Store()
        self._log: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._faults = FaultPlan(clock)
        self._certs: TestCertificates | None = None
        self._server: EmulatorServer | None = None
        self._base_url = ""
        #: Called after each request (outside the lock); its errors are swallowed.
        self.on_request = on_request
        #: Serve the APIs under this path, like a gateway (``/cio``: ``/cio/api/v2/batch``); any
        #: other path answers 404 unrouted.
        self.mount = "/" + mount.strip("/") if mount.strip("/") else ""

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeCustomerIO:
        if self._server is not None:
            return self
        context: ssl.SSLContext | None = None
        if self.https:
            self._certs = TestCertificates()
            context = self._certs.server_context()
        try:
            self._server = EmulatorServer(self._host, self._port, self, context)
        except OSError:  # e.g. the port is taken: leave no temporary CA files behind
            self.stop()
            raise
        self._server.start()
        self._base_url = f"{'https' if self.https else 'http'}://{self._host}:{self.port}"
        return self

    def stop(self) -> None:
        """Stop serving, interrupt stalls, close connections, join threads, delete the CA files."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._certs is not None:
            self._certs.close()
            self._certs = None

    def __repr__(self) -> str:
        return f"<FakeCustomerIO {self._base_url if self._server is not None else 'stopped'}>"

    def __enter__(self) -> FakeCustomerIO:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _running(self) -> EmulatorServer:
        if self._server is None:
            raise RuntimeError("FakeCustomerIO is not running: use `with FakeCustomerIO() as fake:`")
        return self._server

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return int(self._running().server_address[1])

    @property
    def url(self) -> str:
        self._running()
        return self._base_url

    @property
    def track_url(self) -> str:
        return self.url + self.mount

    @property
    def api_url(self) -> str:
        return self.url + self.mount

    @property
    def ca_bundle(self) -> str | None:
        return None if self._certs is None else self._certs.ca_bundle

    # -- clients ----------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """A client ``SSLContext`` trusting the emulator's CA (``None`` over plain HTTP)."""
        return None if self._certs is None else self._certs.client_context()

    def client(self, **kwargs: Any) -> Any:
        """A ``customerio.CustomerIO`` for this emulator, trusting its CA.

        Raises ``ValueError`` over plain HTTP: the SDK always builds ``https://`` URLs.
        """
        from customerio import CustomerIO

        if not self.https:
            raise ValueError("customerio.CustomerIO always uses https: start FakeCustomerIO(https=True)")
        kwargs.setdefault("site_id", self.site_id)
        kwargs.setdefault("api_key", self.api_key)
        if self.mount:
            kwargs.setdefault("url_prefix", self.mount + "/api/v1")
        return self._trusting(CustomerIO(host=self._host, port=self.port, **kwargs))

    def api_client(self, **kwargs: Any) -> Any:
        """A ``customerio.APIClient`` for this emulator's App API (``key=`` overrides the app key)."""
        from customerio import APIClient

        key = kwargs.pop("key", self.app_key)
        return self._trusting(APIClient(key, url=self.api_url, **kwargs))

    def _trusting(self, sdk_client: Any) -> Any:
        bundle = self.ca_bundle
        return sdk_client if bundle is None else make_trusting(sdk_client, bundle)

    def trust(self) -> contextlib.AbstractContextManager[None]:
        """Set ``REQUESTS_CA_BUNDLE`` to the CA (restored on exit) for code that builds its own clients."""
        return ca_environment(self.ca_bundle)

    # -- request flow (called by the server, one thread per connection) ---------------------------
    def serve(self, request: Incoming, connection: Connection) -> None:
        arrived = self._clock()
        if self.mount:
            inside = request.path.startswith(self.mount + "/")
            request = dataclasses.replace(request, path=request.path[len(self.mount) :] if inside else "/-")
        path = request.path.split("?", 1)[0]
        if path == STATE_PATH and request.method == "GET":
            connection.send(Reply(200, self.state()))
            return
        auth_ok = self._router.is_authorised(path, request.authorization)
        with self._lock:
            fault = self._faults.pick(path, arrived)
        if self.latency > 0 and connection.wait(self.latency):
            connection.drop()
            return
        reply: Reply | None = None
        operations = 0
        if fault is None or fault.when == "after":
            reply, operations = self._apply(request, arrived)
        if fault is not None and fault.kind in {"status", "rate_limited"}:
            reply = _fault_reply(fault)
        if fault is None or fault.kind == "stall":
            status = 0 if reply is None else reply.status
        else:
            status = fault.status  # 0 for a reset
        self._record(request, path, status, arrived, auth_ok, fault)
        if self.on_request is not None:
            summary = RequestSummary(
                request.method,
                path,
                status,
                operations,
                self._clock() - arrived,
                None if fault is None else fault.label,
            )
            with contextlib.suppress(Exception):  # a broken log hook must not break the emulator
                self.on_request(summary)
        if fault is not None and fault.kind == "reset":
            connection.reset()
        elif fault is not None and fault.kind == "stall":
            if connection.wait(fault.seconds) or reply is None:
                connection.drop()  # "before": the request was never applied and never answered
            else:
                connection.send(reply)
        elif reply is not None:
            connection.send(reply)

    def _apply(self, request: Incoming, arrived: float) -> tuple[Reply, int]:
        """The reply and how many operations this request applied (counted under the lock)."""
        with self._lock:
            before = self._counts["operations"]
            ctx = Context(
                self._store if self.store else None, self._counts, arrived, self._wall_clock(), self._base_url
            )
            reply = self._router.handle(
                request.method, request.path, request.authorization, request.body, ctx
            )
            return reply, self._counts["operations"] - before

    def _record(
        self, request: Incoming, path: str, status: int, arrived: float, auth_ok: bool, fault: Fault | None
    ) -> None:
        with self._lock:
            self._counts["requests"] += 1
            self._counts[f"status_{status}"] += 1
            self._counts["bytes_received"] += len(request.body)
            if self.store:  # sink mode keeps counters only
                label = None if fault is None else fault.label
                self._log.append(
                    RecordedRequest(
                        request.method,
                        path,
                        status,
                        request.body,
                        arrived,
                        auth_ok,
                        dict(request.headers),
                        label,
                    )
                )


def _fault_reply(fault: Fault) -> Reply:
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    message = "rate limited" if fault.status == 429 else "injected fault"
    return Reply(fault.status, {"meta": {"error": message}}, headers)
