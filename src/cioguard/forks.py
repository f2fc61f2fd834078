"""A forked child's fresh start, also where Python's fork hooks do not run (uWSGI).

::

    from cioguard import forks

    forks.in_child(self._after_fork)    # like os.register_at_fork(after_in_child=...), and uWSGI
    forks.in_uwsgi_worker(hook)         # at the start of every uWSGI worker (forked or not)
    forks.uwsgi_master_before_fork()    # True while a uWSGI master loads the app its workers fork

``os.fork`` and ``multiprocessing`` run Python's fork hooks: every cioguard module that keeps
threads, locks or per-process state registers one, and a child starts with fresh state. uWSGI
forks its workers from C without them (unless ``--py-call-uwsgi-fork-hooks``): a worker whose
master had already made one Customer.io call inherited a sender with no threads (and maybe its
locks held) and delivered nothing for its whole life. uWSGI calls ``uwsgi.post_fork_hook`` in
every worker, so when the ``uwsgi`` module exists (only inside uWSGI) cioguard's hooks are chained
into it (keeping a hook the app set before; through ``uwsgidecorators.postfork`` when the app uses
that module; again at ``instrument()`` in case the app imported it since). Invariant: the child
hooks run once per process, whichever way they are called first.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "in_child",
    "in_uwsgi_worker",
    "install_uwsgi_hook",
    "run_child_hooks",
    "uwsgi_master_before_fork",
]

logger = logging.getLogger("cioguard")

_hooks: list[Callable[[], None]] = []
_worker_hooks: list[Callable[[], None]] = []
#: The process the hooks last ran in (or that registered them): a second call there does nothing.
_ran_in = os.getpid()
#: Held only while a child runs its hooks (never while anything forks).
_running = threading.RLock()
_starting = 0
#: The hook set directly on ``uwsgi.post_fork_hook`` (to tell it is installed already).
_post_fork: Callable[[], None] | None = None


def in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child before anything else of cioguard's runs there."""
    _hooks.append(hook)


def in_uwsgi_worker(hook: Callable[[], None]) -> None:
    """Run ``hook`` when a uWSGI worker starts (after the child hooks when it was forked)."""
    _worker_hooks.append(hook)


def uwsgi_master_before_fork() -> bool:
    """Whether this process is a uWSGI master (or lone process) loading the app before its
    workers start from it (not ``--lazy-apps``, where each worker loads the app itself; not a
    mule or the spooler, which never fork)."""
    uwsgi = _uwsgi()
    if uwsgi is None:
        return False
    try:
        if int(getattr(uwsgi, "mule_id", lambda: 0)()) or getattr(uwsgi, "i_am_the_spooler", lambda: 0)():
            return False
        return int(uwsgi.worker_id()) == 0
    except Exception:  # (a uWSGI without these functions: take it as a worker)
        return False


def _run(hooks: list[Callable[[], None]]) -> None:
    for hook in list(hooks):
        try:
            hook()
        except Exception as exc:  # a hook runs inside fork(): never raise
            logger.error("cioguard: a fork hook failed: %r", exc)


def run_child_hooks() -> None:
    """The child hooks, once in this process (nothing in the process that registered them)."""
    global _ran_in, _starting
    pid = os.getpid()
    if _ran_in == pid:
        return
    with _running:  # two threads of a uWSGI worker healing at once (Runtime.held_until_fork)
        if _ran_in == pid or _starting == pid:
            return  # done, or a hook of ours called back in
        _starting = pid
        _run(_hooks)
        _ran_in = pid  # (after the hooks: another thread waits for them, then finds them done)


def _uwsgi_worker_started() -> None:
    run_child_hooks()  # (nothing when this worker is the process that loaded the app)
    _run(_worker_hooks)


_UNKNOWN = object()
_uwsgi_module: Any = _UNKNOWN


def _uwsgi() -> Any:
    """uWSGI's module, or None outside a uWSGI server; looked up once per process (a failing
    import walks sys.path under the import lock: never on a hot path, never near a fork)."""
    global _uwsgi_module
    if _uwsgi_module is _UNKNOWN:
        try:
            _uwsgi_module = importlib.import_module("uwsgi")  # exists only inside a uWSGI server
        except ImportError:
            _uwsgi_module = None
    return _uwsgi_module


def install_uwsgi_hook() -> None:
    """Chain :func:`_uwsgi_worker_started` into uWSGI's post-fork hook (idempotent; nothing
    outside uWSGI). With a master, through ``uwsgidecorators.postfork``: importing that module
    (which an app using ``@postfork``, ``@timer`` or ``@spool`` does, maybe after cioguard)
    replaces ``uwsgi.post_fork_hook`` with its chain, so cioguard imports it first and joins the
    chain, keeping what the import replaced (a hook, spooler or mule handler set before)."""
    global _post_fork
    uwsgi = _uwsgi()
    if uwsgi is None:
        return
    decorators = sys.modules.get("uwsgidecorators") or _import_decorators(uwsgi)
    chain = getattr(decorators, "postfork_chain", None)
    if decorators is not None and chain is not None:
        if _uwsgi_worker_started not in _chained(chain):
            decorators.postfork(_uwsgi_worker_started)
        return
    previous = getattr(uwsgi, "post_fork_hook", None)
    if _post_fork is not None and previous is _post_fork:
        return  # installed already

    def post_fork() -> None:
        _uwsgi_worker_started()
        if callable(previous):
            previous()

    _post_fork = post_fork
    uwsgi.post_fork_hook = post_fork  # (a module attribute uWSGI reads in every new worker)


#: What importing ``uwsgidecorators`` sets on the ``uwsgi`` module (kept when set before).
_REPLACED = ("spooler", "mule_msg_hook")


def _import_decorators(uwsgi: Any) -> Any:
    kept = {name: getattr(uwsgi, name) for name in (*_REPLACED, "post_fork_hook") if hasattr(uwsgi, name)}
    try:
        decorators = importlib.import_module("uwsgidecorators")  # (it raises without a master)
    except Exception:
        return None
    for name in _REPLACED:
        if name in kept:
            setattr(uwsgi, name, kept[name])
    previous = kept.get("post_fork_hook")
    chain = getattr(decorators, "postfork_chain", None)
    if callable(previous) and isinstance(chain, list) and previous is not decorators.postfork_chain_hook:
        chain.append(previous)  # the app's own hook, set before: still called
    return decorators


def _chained(chain: list[Any]) -> list[Any]:
    return [getattr(entry, "f", entry) for entry in chain]


os.register_at_fork(after_in_child=run_child_hooks)
install_uwsgi_hook()
