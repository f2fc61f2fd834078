"""The exit flush of a uvicorn server process, which leaves by re-raising the signal that stopped it.

uvicorn (0.29 and later) catches SIGTERM and SIGINT, shuts down gracefully, then puts the default
handlers back and raises the signal again: the process dies by it, and no ``atexit`` hook runs, so
without :class:`cioguard.asgi.CioGuardMiddleware` (whose lifespan shutdown flushes) whatever was
still queued was lost without a trace — in every ``uvicorn --workers N`` worker too. Nothing to
call: :func:`cioguard.exits.install` registers :func:`hook` for ``uvicorn.server``; it runs the
exit flush (bounded by ``exit_timeout``) when ``Server.shutdown`` ends with a signal to re-raise::

    uvicorn app:app --workers 4        # app.py: cioguard.instrument(); no middleware needed

A server stopped without a signal (``server.should_exit = True``, tests) is left alone: the
process goes on, and its ``atexit`` flush still runs when it ends.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import wrapt

logger = logging.getLogger("cioguard")

__all__ = ["hook"]


def hook(server: ModuleType) -> None:
    """``uvicorn.server`` was imported: wrap ``Server.shutdown``. Never raises."""
    cls = getattr(server, "Server", None)
    if cls is None or not callable(getattr(cls, "shutdown", None)):
        logger.debug("cioguard: uvicorn.server.Server.shutdown not found; use the ASGI middleware")
        return
    try:
        wrapt.wrap_function_wrapper(server, "Server.shutdown", _after_shutdown)
    except Exception as exc:
        logger.warning("cioguard: could not hook uvicorn's shutdown: %r", exc)


async def _after_shutdown(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        # The signals uvicorn re-raises once this returns (a private attribute: absent in versions
        # that exit through sys.exit, where atexit flushes). The server has stopped serving, so
        # blocking its loop for the flush holds nothing up.
        if getattr(instance, "_captured_signals", None):
            from cioguard.exits import exit_flush  # (exits imports this module)

            exit_flush("uvicorn shutdown")
