"""Where a finding belongs: the user's line, cioguard's own call (no finding), or nowhere.

A pitfall warning must name the line of *the application* that called the SDK. Between that line
and the rule sit frames that are never the answer: cioguard's wrappers, wrapt, the SDK, the
standard library (a thread pool running ``pool.submit(client.track, ...)``). Frames of cioguard's
*own* callers (webhook actions, replay, the scale-out worker, the demo's runner) mean the call was
cioguard's, and such calls are never findings::

    where = locate(1)            # from the caller of the function calling locate()
    if where is INTERNAL:        # cioguard's own call: drop the findings
        ...
    elif where is None:          # no application frame (a thread of the stdlib): use the origin
        ...
    else:
        filename, lineno, module, module_globals = where

:func:`origin` finds the line that called ``cioguard.instrument()`` (findings made on the sender,
such as a 401 or a 429, are attributed there). Each code object is classified once (a bounded
cache), so a walk over a few frames costs a few dict lookups.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Any, Final

#: (filename, lineno, module name, module globals)
Location = tuple[str, int, str, dict[str, Any]]

_SKIP, _INTERNAL, _USER = 0, 1, 2
#: A sentinel: the call came from cioguard itself.
INTERNAL: Final[Location] = ("<cioguard>", 0, "cioguard", {})

# Modules a call passes through on its way from the application to a rule.
_TRANSPARENT_PREFIXES = (
    "cioguard.instrumentation",
    "cioguard.operations",
    "cioguard.pitfalls",
    "cioguard.telemetry",
    "cioguard.clients",
    "cioguard.scope",
    "cioguard.testing",  # fake.client() is the test's line
    "wrapt.",
    "customerio.",
    "opentelemetry.",
    "requests.",
    "urllib3.",
    # Helpers that run a function in a worker thread or greenlet (``sync_to_async(client.track)``,
    # ``run_in_threadpool``): the application's line is not on that thread's stack.
    "asgiref.",
    "anyio.",
    "starlette.concurrency",
    "fastapi.concurrency",
    "gevent.",
    "eventlet.",
)
_TRANSPARENT_NAMES = frozenset({"cioguard", "wrapt", "customerio", "contextlib", "functools", "threading"})
#: cioguard modules that are applications: their mistakes are the point of the demo.
_USER_MODULES = frozenset({"cioguard.demo.app"})


def _stdlib_dirs() -> tuple[str, ...]:
    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


_STDLIB = _stdlib_dirs()
#: cioguard's own files (``python -m cioguard`` runs one as ``__main__``)
_CIOGUARD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")
#: id(code object) -> (the code object, its kind). Keyed on the id: a code object's own hash walks
#: its constants every time (microseconds for a large function); the stored object guards reuse.
_cache: dict[int, tuple[CodeType, int]] = {}


def classify(module: str, filename: str) -> int:
    """0: pass over the frame, 1: cioguard's own call, 2: the application's line."""
    if module in _USER_MODULES:
        return _USER
    if module in _TRANSPARENT_NAMES or module.startswith(_TRANSPARENT_PREFIXES):
        return _SKIP
    if module.startswith("cioguard.") or os.path.realpath(filename).startswith(_CIOGUARD_DIR):
        return _INTERNAL
    if filename.startswith("<frozen") or (
        os.path.realpath(filename).startswith(_STDLIB) and "-packages" not in filename
    ):
        return _SKIP
    return _USER


def _kind(frame: FrameType) -> int:
    code = frame.f_code
    entry = _cache.get(id(code))
    if entry is not None and entry[0] is code:
        return entry[1]
    kind = classify(str(frame.f_globals.get("__name__", "")), code.co_filename)
    if len(_cache) > 8192:  # bounded: code objects of a long-running app are few
        _cache.clear()
    _cache[id(code)] = (code, kind)  # holding the code object keeps its id from being reused
    return kind


def user_frame(depth: int = 1, start: int = 1) -> FrameType | Location | None:
    """Like :func:`locate`, but the application's frame itself (cheaper: no tuple is built)."""
    try:
        frame: FrameType | None = sys._getframe(depth + 1)
    except ValueError:
        return None
    level = 1
    cache = _cache
    while frame is not None:
        code = frame.f_code
        entry = cache.get(id(code))
        kind = entry[1] if entry is not None and entry[0] is code else _kind(frame)
        if kind == _USER and level >= start:
            return frame
        if kind == _INTERNAL:
            return INTERNAL
        frame = frame.f_back
        level += 1
    return None


def as_location(frame: FrameType) -> Location:
    """The :data:`Location` of ``frame`` (its current line)."""
    return frame.f_code.co_filename, frame.f_lineno, str(frame.f_globals.get("__name__", "")), frame.f_globals


#: (id(code object), instruction offset) -> (the code object, its Location): one shared tuple per
#: call site, so a call whose rules run later on the sender keeps no tuple of its own (bounded; the
#: code object held guards against a reused id).
_sites: dict[tuple[int, int], tuple[CodeType, Location]] = {}


def call_site(depth: int = 1) -> Location | None:
    """Like :func:`locate` (``start`` 1), cached per call site: the same tuple for every call there.

    On the hot path of every background call in "warn" mode: the walk of :func:`user_frame` inlined.
    """
    try:
        frame: FrameType | None = sys._getframe(depth + 1)
    except ValueError:
        return None
    # A call site seen before: only application frames are ever stored, under their own code
    # and offset, so a hit for the first frame is the answer (no kind lookup).
    if frame is not None:
        code = frame.f_code
        site = _sites.get((id(code), frame.f_lasti))
        if site is not None and site[0] is code:
            return site[1]
    cache = _cache
    while frame is not None:
        code = frame.f_code
        entry = cache.get(id(code))
        kind = entry[1] if entry is not None and entry[0] is code else _kind(frame)
        if kind == _USER:
            # The instruction offset, not f_lineno: that one decodes the line table on every read.
            key = (id(code), frame.f_lasti)
            site = _sites.get(key)
            if site is not None and site[0] is code:
                return site[1]
            where = as_location(frame)
            if len(_sites) > 8192:  # bounded: call sites of a long-running app are few
                _sites.clear()
            _sites[key] = (code, where)
            return where
        if kind == _INTERNAL:
            return INTERNAL
        frame = frame.f_back
    return None


def locate(depth: int = 1, start: int = 1) -> Location | None:
    """The application's frame above the caller of ``locate`` (``depth`` 1 = that caller's caller).

    Frames below ``start`` (counted like ``depth``) are passed over whatever they are, except that a
    cioguard caller among them still makes the answer :data:`INTERNAL`. ``None``: no application
    frame at all.
    """
    try:
        frame: FrameType | None = sys._getframe(depth + 1)
    except ValueError:
        return None
    level = 1
    while frame is not None:
        kind = _kind(frame)
        if kind == _INTERNAL:
            return INTERNAL
        if kind == _USER and level >= start:
            return (
                frame.f_code.co_filename,
                frame.f_lineno,
                str(frame.f_globals.get("__name__", "")),
                frame.f_globals,
            )
        frame = frame.f_back
        level += 1
    return None


def origin(depth: int = 1) -> Location | None:
    """The first frame outside cioguard, OpenTelemetry and the stdlib: who called ``instrument()``."""
    try:
        frame: FrameType | None = sys._getframe(depth + 1)
    except ValueError:
        return None
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if _kind(frame) == _USER and module not in _USER_MODULES:
            return frame.f_code.co_filename, frame.f_lineno, module, frame.f_globals
        frame = frame.f_back
    return None
