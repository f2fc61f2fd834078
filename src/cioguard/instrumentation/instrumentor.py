"""``CustomerIOInstrumentor``: patches the ``customerio`` SDK classes with wrapt.

Class-level patches cover clients created before ``instrument()``. ``uninstrument()`` flushes what
was queued, stops the sender and restores every original function exactly (the same objects).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Any

import customerio.api
import customerio.client_base
import customerio.track
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, wrap_function_wrapper

from cioguard import exits
from cioguard.config import load_options
from cioguard.instrumentation import wrappers
from cioguard.instrumentation.runtime import Runtime
from cioguard.instrumentation.sdk_retries import session_wrapper
from cioguard.operations.calls import APP_METHODS as _APP_METHODS
from cioguard.operations.calls import TRACK_METHODS as _TRACK_METHODS
from cioguard.package import _instruments

logger = logging.getLogger("cioguard")

#: Every patched method: one binder each in ``cioguard.operations.calls`` (a single source of truth).
TRACK_METHODS = tuple(sorted(_TRACK_METHODS))
APP_METHODS = tuple(sorted(_APP_METHODS))

_lock = threading.RLock()
_runtime: Runtime | None = None


def active_runtime() -> Runtime | None:
    """The runtime of the current instrumentation, or ``None`` when the SDK is not patched."""
    return _runtime


def _patches(runtime: Runtime) -> list[tuple[type, str, wrappers.Wrapper]]:
    track_cls = customerio.track.CustomerIO
    app_cls = customerio.api.APIClient
    patches: list[tuple[type, str, wrappers.Wrapper]] = [
        (track_cls, name, wrappers.track_method(runtime, name))
        for name in TRACK_METHODS
        if hasattr(track_cls, name)
    ]
    patches += [
        (app_cls, name, wrappers.app_method(runtime, name)) for name in APP_METHODS if hasattr(app_cls, name)
    ]
    patches += [
        (track_cls, "__init__", wrappers.client_constructor(runtime, "track")),
        (app_cls, "__init__", wrappers.client_constructor(runtime, "app")),
        (customerio.client_base.ClientBase, "send_request", wrappers.send_request(runtime)),
    ]
    if hasattr(customerio.client_base.ClientBase, "_build_session"):  # the SDK's retrying session
        patches += [(customerio.client_base.ClientBase, "_build_session", session_wrapper(runtime))]
    return patches


def swap_runtime(kwargs: dict[str, Any]) -> Runtime | None:
    """Patch the SDK anew for a runtime built from ``kwargs`` while it stays patched: each SDK
    attribute goes from the old wrapper to the new one in one assignment, so a call made meanwhile
    (another thread) is queued by one runtime or the other, never sent by the bare SDK. Returns
    the old runtime: the caller shuts it down (delivering what it queued)."""
    global _runtime
    options = load_options(kwargs)
    with _lock:
        runtime = Runtime(options)
        runtime.explicit = dict(kwargs)
        for owner, name, wrapper in _patches(runtime):
            current = vars(owner).get(name)
            if isinstance(current, FunctionWrapper):
                setattr(owner, name, FunctionWrapper(current.__wrapped__, wrapper))
            else:
                wrap_function_wrapper(owner, name, wrapper)
        old, _runtime = _runtime, runtime
    return old


class CustomerIOInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """An OpenTelemetry instrumentor for the ``customerio`` SDK.

    ``CustomerIOInstrumentor().instrument(**options)`` is what ``cioguard.instrument(**options)`` and
    ``opentelemetry-instrument`` (entry point ``customerio``) call. Options are those of
    :func:`cioguard.instrument`; missing ones come from ``CIOGUARD_*`` environment variables.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        global _runtime
        # BaseInstrumentor passes its own flags through; they are not cioguard options.
        for flag in ("skip_dep_check", "raise_exception_on_conflict"):
            kwargs.pop(flag, None)
        options = load_options(kwargs)
        with _lock:
            runtime = Runtime(options)
            runtime.explicit = dict(kwargs)  # a later instrument() call changes only what it names
            for owner, name, wrapper in _patches(runtime):
                wrap_function_wrapper(owner, name, wrapper)
            _runtime = runtime
        logger.debug("cioguard: customerio instrumented (mode=%s)", options.mode)
        # Also reached by opentelemetry-instrument, which never calls cioguard.instrument().
        exits.install()  # flush at every way out of the process; idempotent

    def _uninstrument(self, **kwargs: Any) -> None:
        global _runtime
        timeout = float(kwargs.get("timeout", 10.0))
        with _lock:
            runtime, _runtime = _runtime, None
            for owner, name, _ in _patches_for_unwrap():
                unwrap(owner, name)
        if runtime is not None:
            runtime.shutdown(timeout)


def _patches_for_unwrap() -> list[tuple[type, str, None]]:
    track_cls = customerio.track.CustomerIO
    app_cls = customerio.api.APIClient
    names: list[tuple[type, str, None]] = [
        (track_cls, name, None) for name in TRACK_METHODS if hasattr(track_cls, name)
    ]
    names += [(app_cls, name, None) for name in APP_METHODS if hasattr(app_cls, name)]
    names += [(track_cls, "__init__", None), (app_cls, "__init__", None)]
    names += [(customerio.client_base.ClientBase, "send_request", None)]
    if hasattr(customerio.client_base.ClientBase, "_build_session"):
        names += [(customerio.client_base.ClientBase, "_build_session", None)]
    return names
