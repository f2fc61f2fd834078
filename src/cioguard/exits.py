"""Deliver what is queued on every way out of a process, with nothing but ``cioguard.instrument()``.

``instrument()`` calls :func:`install` (once per process; ``uninstrument()`` calls :func:`uninstall`).
Every hook looks up the active instrumentation when it fires, shuts its sender down within
``exit_timeout`` seconds (an exit hook never hangs on a dead endpoint), and sends nothing itself:
operations are delivered by the process that accepted them (the engine starts a fresh, empty queue
in a forked child, so a parent and its child never both send the same operation).

=====================================  ==========================================================
way out                                what flushes
=====================================  ==========================================================
interpreter exit (``sys.exit``,        an ``atexit`` hook (before the engine's own); gunicorn and
end of script, gunicorn/uWSGI worker)  uWSGI workers leave this way too
SIGTERM or SIGHUP, default             :func:`_on_sigterm`: flush, restore ``SIG_DFL`` and
disposition                            re-raise, so the process still dies by the signal
``multiprocessing``/``billiard``       a ``multiprocessing.util.Finalize`` registered in each child
Process and Pool children (fork,       after fork: they leave through ``os._exit`` right after
forkserver)                            ``util._exit_function()``, skipping ``atexit``
``billiard`` Pool workers, Celery      ``billiard.pool.Worker._do_exit`` (wrapped: it calls
prefork children                       ``os._exit`` before even the finalizers) and Celery's
                                       ``worker_process_shutdown`` signal (whichever runs first)
the Celery main process ends           a watcher thread in each prefork child (see below), then
(killed or not)                        the ``SIGKILL`` Celery meant the child to get
uvicorn (and each ``--workers``        the end of ``Server.shutdown`` (``instrumentation.uvicorn_exit``):
process) stopped by SIGTERM/SIGINT     uvicorn re-raises the signal after it; ``atexit`` never runs
=====================================  ==========================================================

Celery's own parent-death signal follows the thread that forked a child, not the main process:
:mod:`cioguard.parent_watch` makes it follow the process, after an exit flush.

One exit flush per process: a second way out taken meanwhile waits for it (bounded), and a SIGTERM
that interrupts it lets it finish, then kills the process by the signal.

The SIGTERM (and SIGHUP) handler is installed only from the main thread and only while the signal
has its default disposition: a handler the app or its server installed earlier is left alone (it usually exits
through ``sys.exit``, i.e. ``atexit``), and one installed later simply replaces ours.
Hooks into ``multiprocessing`` and Celery are post-import hooks (``wrapt``): nothing is imported
that the app does not import itself.

Python runs signal handlers only in the main thread, and only when it executes bytecode: a
background thread that takes a process-directed signal off the kernel's queue (while the main
thread sleeps in a system call) delays every handler, ours and the app's (Ctrl-C included), until
the main thread wakes on its own. A background thread of cioguard's should therefore call
:func:`mask_process_signals` first thing, so the kernel hands those signals to the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType, ModuleType
from typing import Any

import wrapt

from cioguard.instrumentation import uvicorn_exit
from cioguard.telemetry.exit_export import export_pending
from cioguard.threads import mask_process_signals

logger = logging.getLogger("cioguard")

#: Extra seconds a waiter gives the exit flush beyond ``exit_timeout``.
_SLACK = 1.0

_install_lock = threading.Lock()
_hooks_registered = False


class _ExitState:
    """This process's exit flush. Rebuilt in a forked child (never a lock taken across fork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.started = False
        self.thread: threading.Thread | None = None
        self.done = threading.Event()
        #: A SIGTERM that interrupted the exit flush on the main thread: re-raised when it ends.
        self.term_after = 0
        #: Our SIGTERM handler already runs: a repeated SIGTERM does not cut the flush short.
        self.terminating = False


_state = _ExitState()


def _here() -> _ExitState:
    global _state
    if _state.pid != os.getpid():
        _state = _ExitState()
    return _state


class _Anchor:
    """``register_after_fork`` keeps a weak reference to an object: this module-lifetime one."""


_ANCHOR = _Anchor()


def install() -> None:
    """Install the exit hooks of this process; idempotent. Never raises."""
    global _hooks_registered
    try:
        _install_sigterm()
        with _install_lock:
            if _hooks_registered:
                return
            _hooks_registered = True
        # Registered after the engine's own hook, so it runs first (atexit is LIFO).
        atexit.register(exit_flush, "interpreter exit")
        wrapt.register_post_import_hook(_hook_multiprocessing, "multiprocessing.util")
        wrapt.register_post_import_hook(_hook_billiard_pool, "billiard.pool")
        wrapt.register_post_import_hook(_hook_celery, "celery.signals")
        wrapt.register_post_import_hook(uvicorn_exit.hook, "uvicorn.server")
    except Exception as exc:  # exit hooks are a convenience: instrument() must still succeed
        logger.warning("cioguard: could not install the exit hooks: %r", exc)


def flush_before_later_hooks() -> None:
    """Move the interpreter-exit flush back to the front of ``atexit``'s queue (it runs hooks last
    registered first). Called when a tracer provider appears after ``instrument()``: its own exit
    hook (``shutdown``, the final export) was registered after ours and would otherwise run first,
    so the spans of the exit flush's requests would meet a provider already shut down."""
    with _install_lock:
        if not _hooks_registered:
            return
        # Registered once more, the earlier registration kept: exit_flush runs once whichever comes
        # first, and one registered while atexit already runs (Python then calls no new hook) is
        # harmless, where unregistering the earlier one would lose the flush.
        atexit.register(exit_flush, "interpreter exit")


def uninstall() -> None:
    """Give SIGTERM and SIGHUP back their default disposition where our handler is still installed.

    The other hooks stay registered (import hooks cannot be removed) but do nothing while cioguard
    is not instrumented.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _FLUSHED_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main interpreter
            if signal.getsignal(signum) is _on_sigterm:
                signal.signal(signum, signal.SIG_DFL)


def exit_flush(where: str) -> None:
    """Shut the active sender down within ``exit_timeout`` (the process is leaving). Never raises.

    Only the first call in a process flushes; a later one from another thread waits for it.
    """
    from cioguard.instrumentation.instrumentor import active_runtime  # lazy: threads use this module

    runtime = active_runtime()
    if runtime is None:
        return
    state = _here()
    current = threading.current_thread()
    with state.lock:
        owner = not state.started
        if owner:
            state.started, state.thread = True, current
    if not owner:
        if state.thread is not current:
            state.done.wait(runtime.options.exit_timeout + _SLACK)
        return
    try:
        if not runtime.stopped:
            runtime.shutdown(runtime.options.exit_timeout)
        if where != "interpreter exit":  # no atexit will run: OpenTelemetry's export would not
            export_pending(runtime.options.tracer_provider, runtime.options.meter_provider)
    except Exception as exc:  # an exit hook must never stop the exit
        logger.error("cioguard: flush at %s failed: %r", where, exc)
    finally:
        state.done.set()
    if state.term_after:  # set only when this is the main thread (see _on_sigterm)
        _die_by(state.term_after)


# -- SIGTERM ---------------------------------------------------------------------------------------


#: Signals whose default action ends the process and that mean "leave now, cleanly": SIGTERM (a
#: service manager, Kubernetes, Docker) and SIGHUP (a closed terminal or ssh session). SIGQUIT
#: (a core dump on purpose), SIGUSR1/2 and SIGALRM are left alone (see the README).
_FLUSHED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal() only works there
    for signum in _FLUSHED_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main interpreter
            # None: a handler installed from C; SIG_IGN: deliberately ignored (nohup). Both are
            # left alone, as is any handler of the application's.
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush within ``exit_timeout``, then die by the signal exactly as the default would."""
    state = _here()
    if state.terminating:
        return
    state.terminating = True
    if state.started and not state.done.is_set() and state.thread is threading.current_thread():
        # We interrupted this thread's own exit flush: let it resume; it dies by the signal after.
        state.term_after = signum
        return
    try:
        from cioguard.instrumentation.instrumentor import active_runtime

        runtime = active_runtime()
        if runtime is not None:
            # In a thread: this handler interrupted the main thread between two bytecodes, maybe
            # while it held a lock the flush needs. The join bounds that case.
            worker = threading.Thread(
                target=_flush_on_sigterm,
                args=(signal.Signals(signum).name,),
                name="cioguard-sigterm",
                daemon=True,
            )
            worker.start()
            worker.join(runtime.options.exit_timeout + 2 * _SLACK)
    finally:
        _die_by(signum)


def _flush_on_sigterm(name: str) -> None:
    mask_process_signals()  # a second SIGTERM must reach the main thread (and be ignored there)
    exit_flush(name)


def _die_by(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(AttributeError, OSError, ValueError):  # no pthread_sigmask here
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    time.sleep(1.0)  # the default action terminates us before this returns
    os._exit(128 + signum)  # pragma: no cover - only if the signal could not be delivered


# -- multiprocessing and billiard -----------------------------------------------------------------


def _hook_multiprocessing(util: ModuleType) -> None:
    """``multiprocessing.util`` was imported (``billiard.util`` shares its registries)."""
    try:
        util.register_after_fork(_ANCHOR, _in_child)
        # This process may itself be a child (cioguard instrumented inside it): hook it too. In the
        # main process it runs at atexit time like our own hook: exit_flush runs once either way.
        _register_finalizer(util)
    except Exception as exc:
        logger.warning("cioguard: could not hook multiprocessing children: %r", exc)


def _in_child(_anchor: object) -> None:
    """Runs in a multiprocessing/billiard child after fork, after its finalizers were cleared."""
    import multiprocessing.util as util

    try:
        _register_finalizer(util)
    except Exception as exc:  # never break the child's start
        logger.warning("cioguard: could not hook this multiprocessing child: %r", exc)


def _register_finalizer(util: Any) -> None:
    # exitpriority 0: run by util._exit_function() among the "atexit" finalizers, after higher
    # priority ones such as a Pool's own termination (15).
    util.Finalize(_ANCHOR, exit_flush, args=("multiprocessing child exit",), exitpriority=0)


def _hook_billiard_pool(pool: ModuleType) -> None:
    """billiard's pool workers end in ``Worker._do_exit`` with ``os._exit``, before any finalizer."""
    worker = getattr(pool, "Worker", None)
    if worker is None or not callable(getattr(worker, "_do_exit", None)):
        logger.debug("cioguard: billiard.pool.Worker._do_exit not found; Celery's signal still flushes")
        return
    try:
        wrapt.wrap_function_wrapper(pool, "Worker._do_exit", _before_worker_exit)
    except Exception as exc:
        logger.warning("cioguard: could not hook billiard pool workers: %r", exc)


def _before_worker_exit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    exit_flush("billiard pool worker exit")
    return wrapped(*args, **kwargs)


# -- Celery ---------------------------------------------------------------------------------------


def _hook_celery(signals: ModuleType) -> None:
    try:
        signals.worker_process_shutdown.connect(_on_worker_process_shutdown, weak=False)
        from cioguard.parent_watch import on_worker_process_init

        signals.worker_process_init.connect(on_worker_process_init, weak=False)
        prefork = sys.modules.get("celery.concurrency.prefork")
        if getattr(prefork, "_process_hostname", None) is not None:
            # instrument() ran in a prefork child, e.g. from a worker_process_init receiver: this
            # one's dispatch started before we connected.
            on_worker_process_init()
    except Exception as exc:
        logger.warning("cioguard: could not hook Celery worker processes: %r", exc)


def _on_worker_process_shutdown(*_args: Any, **_kwargs: Any) -> None:
    exit_flush("Celery worker process exit")
