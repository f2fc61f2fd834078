"""cioguard: non-blocking, observable and correct Customer.io for Python.

One call makes every use of the official ``customerio`` SDK in the process non-blocking, traced,
measured and checked for known Customer.io pitfalls::

    import cioguard
    cioguard.instrument()

or, with no code at all, ``opentelemetry-instrument python app.py`` (entry point ``customerio``).
See the README for options, metrics, dashboards and the pitfall catalogue.

Public names are loaded on first use, so ``import cioguard`` stays cheap (``cioguard lint`` does not
import the SDK).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cioguard.version import __version__

if TYPE_CHECKING:
    from cioguard import asgi, metrics, scope, testing, webhooks, wsgi
    from cioguard.clients import ConfigurationError, app_client, reset_clients, track_client
    from cioguard.instrumentation import CustomerIOInstrumentor
    from cioguard.lifecycle import flush, instrument, shutdown, stats, synchronous, uninstrument
    from cioguard.pitfalls import (
        BlockingCallWarning,
        ClientPerRequestWarning,
        DynamicEventNameWarning,
        EmailAsIdWarning,
        EventSchemaWarning,
        InconsistentEventNameWarning,
        LegacyCallWarning,
        MillisecondTimestampWarning,
        MissingEmailWarning,
        NoBounceHandlingWarning,
        PayloadLimitWarning,
        PiiInEventNameWarning,
        PitfallWarning,
        RateLimitWarning,
        TrackBeforeIdentifyWarning,
        WrongApiKeyWarning,
    )
    from cioguard.pitfalls.schema import declare_events

_LAZY: dict[str, str] = {
    "instrument": "cioguard.lifecycle",
    "uninstrument": "cioguard.lifecycle",
    "flush": "cioguard.lifecycle",
    "shutdown": "cioguard.lifecycle",
    "stats": "cioguard.lifecycle",
    "synchronous": "cioguard.lifecycle",
    "CustomerIOInstrumentor": "cioguard.instrumentation",
    "track_client": "cioguard.clients",
    "app_client": "cioguard.clients",
    "reset_clients": "cioguard.clients",
    "ConfigurationError": "cioguard.clients",
    "declare_events": "cioguard.pitfalls.schema",
    "PitfallWarning": "cioguard.pitfalls",
    "WrongApiKeyWarning": "cioguard.pitfalls",
    "MillisecondTimestampWarning": "cioguard.pitfalls",
    "TrackBeforeIdentifyWarning": "cioguard.pitfalls",
    "EmailAsIdWarning": "cioguard.pitfalls",
    "MissingEmailWarning": "cioguard.pitfalls",
    "DynamicEventNameWarning": "cioguard.pitfalls",
    "BlockingCallWarning": "cioguard.pitfalls",
    "NoBounceHandlingWarning": "cioguard.pitfalls",
    "ClientPerRequestWarning": "cioguard.pitfalls",
    "InconsistentEventNameWarning": "cioguard.pitfalls",
    "RateLimitWarning": "cioguard.pitfalls",
    "PiiInEventNameWarning": "cioguard.pitfalls",
    "EventSchemaWarning": "cioguard.pitfalls",
    "PayloadLimitWarning": "cioguard.pitfalls",
    "LegacyCallWarning": "cioguard.pitfalls",
}
_SUBMODULES = frozenset({"asgi", "wsgi", "metrics", "webhooks", "testing", "scope"})

__all__ = [
    "BlockingCallWarning",
    "ClientPerRequestWarning",
    "ConfigurationError",
    "CustomerIOInstrumentor",
    "DynamicEventNameWarning",
    "EmailAsIdWarning",
    "EventSchemaWarning",
    "InconsistentEventNameWarning",
    "LegacyCallWarning",
    "MillisecondTimestampWarning",
    "MissingEmailWarning",
    "NoBounceHandlingWarning",
    "PayloadLimitWarning",
    "PiiInEventNameWarning",
    "PitfallWarning",
    "RateLimitWarning",
    "TrackBeforeIdentifyWarning",
    "WrongApiKeyWarning",
    "__version__",
    "app_client",
    "asgi",
    "declare_events",
    "flush",
    "instrument",
    "metrics",
    "reset_clients",
    "scope",
    "shutdown",
    "stats",
    "synchronous",
    "testing",
    "track_client",
    "uninstrument",
    "webhooks",
    "wsgi",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"cioguard.{name}")
    raise AttributeError(f"module 'cioguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
