"""Celery prefork children die with the Celery main process, after their exit flush.

Connected by :mod:`cioguard.exits` to Celery's ``worker_process_init`` signal; nothing to call::

    cioguard.instrument()        # in the tasks module: each prefork child runs the hook itself

Celery arms ``PR_SET_PDEATHSIG=SIGKILL`` in each prefork child "for when the main process exits",
but Linux sends it when the *thread* that forked the child ends. billiard forks every replacement
child (``--max-tasks-per-child``, ``--max-memory-per-child``, a crashed child) from its Supervisor
thread, which ends within 0.8 s of the pool closing at warm shutdown: children still running a task
or delivering were killed with their events. :func:`on_worker_process_init` disarms it and starts a
watcher that does it by process: once the main process is gone, flush within ``exit_timeout``, then
die by that signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from typing import Any

from cioguard.exits import exit_flush
from cioguard.threads import daemon_thread

__all__ = ["on_worker_process_init"]

logger = logging.getLogger("cioguard")

#: Seconds between two looks at the parent process where no pidfd tells when it ends.
_PARENT_POLL = 0.5


def on_worker_process_init(*_args: Any, **_kwargs: Any) -> None:
    """In a prefork child, after Celery armed its parent-death signal: make it process-scoped."""
    try:
        import billiard.util as util  # type: ignore[import-untyped]  # imported: we run in its child

        signum = util.get_pdeathsig()
        if not signum:
            return  # not Linux, or nothing armed
        # Read while still armed: had the main process ended already, the signal would have
        # killed us. Disarmed only once the watcher runs.
        ppid = os.getppid()
        daemon_thread(_watch_parent, "cioguard-parent-watch", (ppid, signum)).start()
        util.set_pdeathsig(0)
    except Exception as exc:  # the child keeps Celery's thread-scoped signal
        logger.warning("cioguard: could not watch the Celery main process: %r", exc)


def _watch_parent(ppid: int, signum: int) -> None:
    """Wait until process ``ppid`` is no longer our parent, flush, then die by ``signum``."""
    poller: select.poll | None = None
    with contextlib.suppress(AttributeError, OSError):  # no pidfd (before Linux 5.3): poll getppid
        # Had ``ppid`` ended before this (its pid maybe reused), the loop below ends at once.
        ready = select.poll()
        ready.register(os.pidfd_open(ppid), select.POLLIN)
        poller = ready  # set only once registered: an empty poller would wait forever
    # getppid() moves only once the whole parent process is gone: a thread that ends reparents us
    # to another thread of the same process. A readable pidfd says so the moment it happens.
    while os.getppid() == ppid:
        if poller is None:
            time.sleep(_PARENT_POLL)
        elif poller.poll(None):
            poller = None  # the parent ended: getppid() shows it now or at one of the next looks
    exit_flush("Celery main process exit")
    os.kill(os.getpid(), signum)
