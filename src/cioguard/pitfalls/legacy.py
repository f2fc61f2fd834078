"""CIO015 at run time: a customerio 1.x/2.x style call that 3.x rejects, named in 3.x spelling.

customerio 1.x/2.x took event properties as keyword arguments (``track(customer_id="u1",
name="paid", plan="pro")``); 3.x takes them in ``data={...}`` and raises ``TypeError`` for the
old spelling. Applications that catch and log exceptions around tracking then lose every event
without noticing. The binder calls :func:`legacy_type_error` when the arguments do not bind::

    try:
        call = binder(None, *args, **kwargs)
    except TypeError as exc:
        raise legacy_type_error(method, exc) from None

The error stays a ``TypeError`` (code catching it keeps working) and its message adds the 3.x
spelling; unless the pitfalls are off (or CIO015 disabled), each occurrence counts in
``customerio_pitfalls_total{code="CIO015"}`` and the first is logged with the fix, so swallowed
errors still show up on the dashboard.
"""

from __future__ import annotations

import logging

from cioguard.telemetry.recorder import get_recorder

logger = logging.getLogger("cioguard.pitfalls")

#: The 3.x spelling of each method whose 1.x/2.x spelling differs.
SPELLINGS: dict[str, str] = {
    "track": "track(customer_id, name, data={...}, timestamp=None)",
    "track_anonymous": "track_anonymous(anonymous_id, name, data={...}, timestamp=None)",
    "identify": "identify(id, **attributes)",
    "pageview": "pageview(customer_id, page, **data)",
    "backfill": "backfill(customer_id, name, timestamp, **data)",
}
_logged = False


#: What changed since 1.x/2.x, per method (the event calls' properties, else the argument shape).
_HINTS: dict[str, str] = {
    "track": "event properties go in data={...}, not as keyword arguments as in customerio 1.x/2.x",
    "track_anonymous": "event properties go in data={...}, not as keyword arguments as in customerio 1.x/2.x",
    "identify": "the id is the first argument and attributes are keyword arguments",
}


def legacy_message(method: str, original: str) -> str:
    """``original`` plus the 3.x spelling of ``method`` and the pitfall code."""
    spelling = SPELLINGS.get(method)
    if spelling is None:
        return original
    hint = _HINTS.get(method, "check the arguments against it")
    return f"{original} (CIO015: customerio 3.x takes {spelling}; {hint})"


def _enabled() -> bool:
    """CIO015 is counted unless the instrumentation runs with ``pitfalls="off"`` or disabled it."""
    from cioguard.instrumentation.instrumentor import active_runtime  # only on this error path

    runtime = active_runtime()
    return runtime is None or "CIO015" in runtime.pitfalls.enabled


def is_legacy(method: str, exc: TypeError, keywords: bool) -> bool:
    """Whether ``exc`` (the arguments did not bind) comes from the 1.x/2.x spelling: properties as
    keyword arguments, a dict where 3.x takes keywords (``identify(id, {...})``), or keywords that
    left a 3.x parameter unfilled (``identify(customer_id=…)``). A missing argument in a call
    without keywords (``track("u1")``, ``identify()``) is an ordinary mistake."""
    if method not in SPELLINGS:
        return False
    text = str(exc)
    if "unexpected keyword argument" in text or "were given" in text:
        return True
    return keywords and "missing" in text


def legacy_type_error(method: str, exc: TypeError, keywords: bool = True) -> TypeError:
    """The ``TypeError`` to raise instead of ``exc``: same type, message naming the 3.x spelling
    (``exc`` itself when the call is not in the 1.x/2.x spelling). ``keywords``: the call had some."""
    global _logged
    if not is_legacy(method, exc, keywords):
        return exc
    try:
        if not _enabled():
            return TypeError(legacy_message(method, str(exc)))
        get_recorder().pitfall("CIO015")
        if not _logged:
            _logged = True
            logger.warning(
                "CIO015 a customerio call used the 1.x/2.x spelling and was rejected with TypeError: %s",
                legacy_message(method, str(exc)),
            )
    except Exception:  # counting must never change the error the caller gets
        logger.debug("CIO015 count failed", exc_info=True)
    return TypeError(legacy_message(method, str(exc)))
