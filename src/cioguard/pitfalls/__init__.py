"""Runtime pitfall detection: Customer.io mistakes found while the code runs (CIO001 to CIO015).

Every pitfall has a warning category (a :class:`PitfallWarning` subclass with ``.code``); the rules
are small pure functions in the modules of this package; :class:`PitfallEngine` runs them for the
instrumentation and warns at the user's line, raises (``pitfalls="error"``) or stays silent
(``"off"``). Each code with wrong and right examples:
https://github.com/cioguard/cioguard/blob/main/docs/pitfalls.md

Public helpers for other parts of an application:

- :func:`declare_events` (also ``cioguard.declare_events``): the event taxonomy for CIO013.
- :mod:`cioguard.pitfalls.bounces`: ``register_receiver()``, ``record_bounce(identifier)``,
  ``is_bounced(identifier)`` for the reporting-webhook receiver (CIO008).
"""

from __future__ import annotations

from cioguard.pitfalls import bounces
from cioguard.pitfalls.categories import (
    ALL_CODES,
    CATEGORIES,
    BlockingCallWarning,
    ClientPerRequestWarning,
    DynamicEventNameWarning,
    EmailAsIdWarning,
    EventSchemaWarning,
    Finding,
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
from cioguard.pitfalls.cmdline import apply_deferred_options
from cioguard.pitfalls.config import PitfallConfig, PitfallMode
from cioguard.pitfalls.engine import PitfallEngine
from cioguard.pitfalls.schema import clear_events, declare_events

apply_deferred_options()  # python -W error::cioguard.PitfallWarning (CPython drops it at startup)

__all__ = [
    "ALL_CODES",
    "CATEGORIES",
    "BlockingCallWarning",
    "ClientPerRequestWarning",
    "DynamicEventNameWarning",
    "EmailAsIdWarning",
    "EventSchemaWarning",
    "Finding",
    "InconsistentEventNameWarning",
    "LegacyCallWarning",
    "MillisecondTimestampWarning",
    "MissingEmailWarning",
    "NoBounceHandlingWarning",
    "PayloadLimitWarning",
    "PiiInEventNameWarning",
    "PitfallConfig",
    "PitfallEngine",
    "PitfallMode",
    "PitfallWarning",
    "RateLimitWarning",
    "TrackBeforeIdentifyWarning",
    "WrongApiKeyWarning",
    "bounces",
    "clear_events",
    "declare_events",
]
