"""One SDK client per process, built from ``CUSTOMERIO_*`` environment variables (seed pattern 4).

::

    import cioguard

    cio = cioguard.track_client()   # customerio.CustomerIO(site_id, api_key, region=...)
    api = cioguard.app_client()     # customerio.APIClient(app_key, region=...)

Variables: ``CUSTOMERIO_SITE_ID`` and ``CUSTOMERIO_TRACK_API_KEY`` (Track),
``CUSTOMERIO_APP_API_KEY`` (App API), ``CUSTOMERIO_REGION`` (``us``, the default, or ``eu``). A
missing variable raises one :class:`ConfigurationError` naming every missing one. The same client
object is returned on every call in a process; a forked child gets its own (a ``requests`` session
must not be shared across processes). :func:`reset_clients` forgets them (for tests).
Building the client once is also what keeps CIO009 (client per request) quiet.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from typing import Any

from cioguard.sdk_check import require_sdk

require_sdk()  # a clear error, not "cannot import name", when `customerio` is not the SDK

from customerio import APIClient, CustomerIO, Regions  # noqa: E402


class ConfigurationError(ValueError):
    """Required configuration (an environment variable) is missing or invalid."""


_lock = threading.Lock()
_clients: dict[str, Any] = {}
_pid = os.getpid()


def _region(environ: Mapping[str, str]) -> Any:
    value = environ.get("CUSTOMERIO_REGION", "us").strip().lower() or "us"
    if value not in {"us", "eu"}:
        raise ConfigurationError(f"CUSTOMERIO_REGION={value!r} is not a region; use 'us' or 'eu'")
    return Regions.EU if value == "eu" else Regions.US


def _require(environ: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not environ.get(name, "").strip()]
    if missing:
        raise ConfigurationError(
            f"missing environment variable(s) {', '.join(missing)}: set them to your Customer.io "
            "credentials (Settings → API Credentials)"
        )
    return [environ[name].strip() for name in names]


def _cached(kind: str, build: Any) -> Any:
    global _pid
    with _lock:
        if os.getpid() != _pid:  # forked child: never reuse the parent's sessions
            _clients.clear()
            _pid = os.getpid()
        client = _clients.get(kind)
        if client is None:
            client = _clients[kind] = build()
        return client


def track_client(environ: Mapping[str, str] | None = None) -> CustomerIO:
    """The process's Track API client (``customerio.CustomerIO``)."""
    env = os.environ if environ is None else environ

    def build() -> CustomerIO:
        site_id, api_key = _require(env, "CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_API_KEY")
        return CustomerIO(site_id, api_key, region=_region(env))

    client: CustomerIO = _cached("track", build)
    return client


def app_client(environ: Mapping[str, str] | None = None) -> APIClient:
    """The process's App API client (``customerio.APIClient``) for transactional messages."""
    env = os.environ if environ is None else environ

    def build() -> APIClient:
        (key,) = _require(env, "CUSTOMERIO_APP_API_KEY")
        return APIClient(key, region=_region(env))

    client: APIClient = _cached("app", build)
    return client


def reset_clients() -> None:
    """Forget the cached clients (closing their sessions); the next call builds new ones."""
    with _lock:
        for client in _clients.values():
            with contextlib.suppress(Exception):  # closing is best effort
                client.close()
        _clients.clear()
