"""cioguard's background threads leave process signals to the main thread.

::

    from cioguard.threads import daemon_thread

    daemon_thread(self._run, "cioguard-something").start()

The kernel gives a process-directed signal (SIGTERM, SIGINT …) to any thread that does not block
it. If one of our sender threads takes it while the main thread sleeps in a system call, Python
runs the handler — cioguard's exit flush or the app's own — only when the main thread wakes up:
a script that sleeps 30 s then ignores SIGTERM for 30 s. Every thread cioguard starts therefore
blocks those signals first thing (:func:`mask_process_signals`), so the main thread receives them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

#: Signals the kernel gives to whichever thread does not block them, whose Python handlers must run
#: in the main thread. Synchronous faults (SIGSEGV, SIGPIPE …) go to the thread that caused them.
PROCESS_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD")
    if hasattr(signal, name)
)


def mask_process_signals() -> None:
    """Block :data:`PROCESS_SIGNALS` in the calling thread (a background thread of cioguard's).

    Call it first thing in the thread's target; the main thread then receives them. Nothing is
    blocked on the main OS thread itself: under gevent or eventlet monkey patching our "threads"
    are greenlets there, and blocking would hide SIGTERM from the whole worker. Never raises.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):  # no pthread_sigmask here
        if on_main_os_thread():
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, PROCESS_SIGNALS)


def on_main_os_thread() -> bool:
    """Whether the caller runs on the process's main OS thread (a greenlet's "thread" does)."""
    native = threading.get_native_id()  # the OS thread id, even for a monkey-patched thread
    return native == os.getpid() or native == threading.main_thread().native_id


def daemon_thread(target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
    """A daemon thread (not started) that masks process signals, then runs ``target(*args)``."""

    def run() -> None:
        mask_process_signals()
        target(*args)

    return threading.Thread(target=run, name=name, daemon=True)
