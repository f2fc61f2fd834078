"""How the sender puts bytes on the wire: a tiny :class:`Transport` protocol.

The engine calls ``transport.send(method, url, body, headers, timeout)`` and gets a
:class:`TransportResponse` or a :class:`TransportError` (``kind`` is ``timeout``, ``tls`` or
``connection``; ``str(error)`` is a short cause such as ``certificate verify failed`` or
``connection refused``). Retries belong to the engine alone: the default :class:`RequestsTransport`
mounts ``HTTPAdapter(max_retries=0)`` so one engine attempt is exactly one HTTP request, and a
request not answered in full within ``WHOLE_REQUEST_FACTOR`` times its timeout is cut off as a
``timeout`` (:mod:`cioguard.delivery.deadline`: the timeout of ``requests`` applies to each read).
It honours ``REQUESTS_CA_BUNDLE`` and proxy variables (``trust_env``), read at the first request to
each origin. Tests may pass any object
with a ``send`` method; a ``close()`` method, when present, is called at shutdown and after fork.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.poolmanager import ProxyManager

from cioguard.delivery.deadline import WATCH, WATCHED_POOLS, WHOLE_REQUEST_FACTOR
from cioguard.delivery.slices import handoff
from cioguard.version import __version__

USER_AGENT = f"cioguard/{__version__} (+background delivery for customerio)"

ErrorKind = Literal["timeout", "tls", "connection"]

#: Phrases of a failure's text that name its cause, first match wins (lower-case).
_CAUSES = (
    ("certificate verify failed", "certificate verify failed"),
    ("wrong version number", "TLS handshake failed (plain HTTP on an https:// URL?)"),
    ("connection refused", "connection refused"),
    ("connection reset", "connection reset"),
    ("name or service not known", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("remotedisconnected", "connection closed without a response"),
    ("remote end closed", "connection closed without a response"),
)


def describe(exc: BaseException) -> str:
    """A short cause for a failed request (no URL, no credentials): the first known phrase of its
    text, else the exception's class name."""
    text = f"{type(exc).__name__}: {exc}".lower()
    for phrase, cause in _CAUSES:
        if phrase in text:
            return cause
    return type(exc).__name__


@dataclass(frozen=True)
class TransportResponse:
    """One HTTP response: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class TransportError(Exception):
    """The request got no response: ``kind`` is ``timeout``, ``tls`` or ``connection``."""

    def __init__(self, kind: ErrorKind, message: str = "") -> None:
        super().__init__(message or kind)
        self.kind: ErrorKind = kind


class Transport(Protocol):
    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        """Send one request; raise :class:`TransportError` when no response arrived."""


def _complete(response: requests.Response, content: bytes) -> bool:
    """The whole answer arrived (its Content-Length of body), though the deadline passed just then."""
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) == len(content)


def _cut_off(timeout: float) -> str:
    return f"answer not complete after {WHOLE_REQUEST_FACTOR * timeout:g} s"


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections (direct or through a proxy) report to :data:`WATCH`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # a SOCKS manager's pools take other connections
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


class RequestsTransport:
    """The default transport: one pooled ``requests.Session``, no retries underneath."""

    def __init__(self, pool_maxsize: int = 4) -> None:
        self._pool_maxsize = max(1, pool_maxsize)
        self._session = self._build()
        self._origins: dict[str, dict[str, Any]] = {}

    def _build(self) -> requests.Session:
        session = requests.Session()
        adapter = _WatchedAdapter(max_retries=0, pool_connections=4, pool_maxsize=self._pool_maxsize)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _settings(self, url: str) -> dict[str, Any]:
        """``verify``/``cert``/``proxies`` from the environment (``trust_env``) for ``url``'s
        origin, worked out once per origin: requests would redo it (an environment scan and a
        proxy-bypass check, ~0.1 ms of the sender's GIL time) on every request."""
        origin = url[: url.find("/", url.find("//") + 2) % (len(url) + 1)]
        settings = self._origins.get(origin)
        if settings is None:
            merged = self._session.merge_environment_settings(url, {}, False, None, None)
            settings = {key: merged[key] for key in ("verify", "cert", "proxies")}
            self._origins[origin] = settings
        return settings

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        timeout = max(timeout, 0.001)
        cut = False
        try:
            # The session's adapter directly (no cookie jar, hooks, redirects or netrc lookup:
            # none applies to Customer.io's APIs): fewer long stretches of Python per request.
            request = requests.PreparedRequest()
            request.prepare(method=method, url=url, headers=dict(headers), data=body)
            adapter = self._session.get_adapter(url)
            # The whole exchange, not only each read, is bounded (a trickling server: deadline.py).
            WATCH.arm(time.monotonic() + WHOLE_REQUEST_FACTOR * timeout)
            try:
                handoff()
                response = adapter.send(request, stream=False, timeout=timeout, **self._settings(url))
                handoff()
                content = response.content
            finally:
                cut = WATCH.disarm()
        except requests.exceptions.SSLError as exc:  # (a ConnectionError too: test it first)
            raise TransportError(
                "timeout" if cut else "tls", _cut_off(timeout) if cut else describe(exc)
            ) from None
        except requests.Timeout as exc:
            raise TransportError("timeout", type(exc).__name__) from None
        except requests.RequestException as exc:
            # Connection refused/reset and proxy failures: all retryable.
            if cut:
                raise TransportError("timeout", _cut_off(timeout)) from None
            raise TransportError("connection", describe(exc)) from None
        if cut:
            adapter.close()  # its shut socket must not serve another request (idle ones reconnect)
            if not _complete(response, content):  # a status line, no body, may parse as an answer
                raise TransportError("timeout", _cut_off(timeout))
        headers_out = {k.lower(): v for k, v in response.headers.items()}
        return TransportResponse(response.status_code, headers_out, content)

    def close(self) -> None:
        self._session.close()

    def reset_after_fork(self) -> None:
        """Forget the parent's pooled connections (never close them: the parent still uses them)."""
        self._session = self._build()
        self._origins = {}
