"""SDK subclasses that send requests their own way keep their calls synchronous.

In background mode cioguard delivers Track calls with its own HTTP client, so the SDK's
``send_request`` and ``requests`` session are not used. A ``CustomerIO`` subclass that overrides
``send_request`` (audit logging, an outbox) or ``_build_session`` (proxies, headers, adapters)
expects that code to see every request: its calls go through the SDK as before (still traced,
measured and checked), and a warning says so once per class::

    if kind is not CustomerIO and sends_itself(kind):   # one identity test for the plain client
        return runtime.call_through(...)

Session settings made on an instance (``cio.http.hooks``, ``cio.http.proxies``) are not seen:
the README says so, and ``cioguard.synchronous()`` or ``mode="blocking"`` keep them working.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("cioguard.instrumentation")

#: Methods of ``customerio.client_base.ClientBase`` through which a subclass changes how it sends.
SEND_HOOKS = ("send_request", "_build_session")

_known: dict[type, bool] = {}
_lock = threading.Lock()


def sends_itself(kind: type) -> bool:
    """True when ``kind`` (an SDK client class) overrides one of :data:`SEND_HOOKS`."""
    known = _known.get(kind)
    if known is None:
        known = _classify(kind)
    return known


def _classify(kind: type) -> bool:
    hooks = [name for name in SEND_HOOKS if _owner_module(kind, name).split(".")[0] != "customerio"]
    with _lock:
        if kind in _known:
            return _known[kind]
        if len(_known) > 1024:  # bounded: client classes are few
            _known.clear()
        _known[kind] = bool(hooks)
    if hooks:
        logger.warning(
            "cioguard: %s.%s overrides %s: its Track calls stay synchronous, so that code still runs "
            "for every request. To make them non-blocking, move that code out of the subclass "
            "(cioguard's spans and on_drop report each delivery), or set mode='blocking' to say so.",
            kind.__module__,
            kind.__qualname__,
            " and ".join(hooks),
        )
    return bool(hooks)


def _owner_module(kind: type, name: str) -> str:
    for klass in kind.__mro__:
        if name in vars(klass):
            return klass.__module__
    return "customerio"
