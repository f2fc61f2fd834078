"""The Django app: ``INSTALLED_APPS += ["cioguard.django"]`` instruments the SDK at start-up.

``ready()`` calls :func:`cioguard.instrument` with the ``CIOGUARD`` setting (a dict of its keyword
options; absent means ``{}``, ``None`` means do not instrument). Instrumenting is idempotent and
cheap (the sender thread starts on the first call), so the autoreloader's parent process, management
commands and forked workers are all fine.

In ``runserver``'s autoreloader process it also lets the server process finish its exit flush on
Ctrl-C: the reloader runs the server with ``subprocess.run``, which on KeyboardInterrupt waits
0.25 s for it (CPython's ``Popen._sigint_wait_secs``) and then SIGKILLs it. The reloader's first
Ctrl-C now waits for the server to exit by itself (at most ``exit_timeout`` + 1 s); a second
Ctrl-C stops it at once, as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def cioguard_options() -> dict[str, Any] | None:
    """The ``CIOGUARD`` setting as keyword options (``None``: do not instrument)."""
    options = getattr(settings, "CIOGUARD", {})
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            f"settings.CIOGUARD must be a dict of cioguard.instrument() options, got {type(options).__name__}"
        )
    return dict(options)


class CioGuardConfig(AppConfig):
    name = "cioguard.django"
    label = "cioguard"
    verbose_name = "cioguard (Customer.io)"

    def ready(self) -> None:
        options = cioguard_options()
        if options is None:
            return
        import cioguard

        try:
            cioguard.instrument(**options)
        except (TypeError, ValueError) as exc:
            # Documented validation errors, re-raised the way Django reports bad settings.
            raise ImproperlyConfigured(f"settings.CIOGUARD: {exc}") from exc
        if (
            "runserver" in sys.argv[1:]
            and "--noreload" not in sys.argv
            and os.environ.get("RUN_MAIN") != "true"
        ):
            _let_the_server_flush(_exit_timeout(options))


def _exit_timeout(options: Mapping[str, Any]) -> float:
    """The ``exit_timeout`` instrument() was given (valid: it did not raise), else its default."""
    value = options.get("exit_timeout", os.environ.get("CIOGUARD_EXIT_TIMEOUT") or 5.0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 5.0


def _let_the_server_flush(exit_timeout: float) -> None:
    """In the autoreloader (not the server: Django sets ``RUN_MAIN=true`` there), with the default
    SIGINT handler: the first Ctrl-C waits for the server process (which got it too and exits after
    its flush) instead of interrupting the reloader; a second one, or ``exit_timeout`` + 1 s
    later, interrupts it as before."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # the app's own handler (or SIGINT ignored): leave it alone
    first: list[float] = []

    def on_sigint(signum: int, frame: Any) -> None:
        if first:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        first.append(time.monotonic())
        timer = threading.Timer(exit_timeout + 1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()

    with contextlib.suppress(ValueError):  # not the main thread: Django runs ready() there
        signal.signal(signal.SIGINT, on_sigint)
