"""A child forked while a sender thread imports a module on its first request still delivers.

``requests`` imports ``netrc`` inside every request (``trust_env``), the first time in one of
cioguard's sender threads. A fork at that moment leaves the module half-initialised and its import
lock held in the child, by a thread the child does not have: every request of the child then
waits forever on that lock. Found from outside: in 150 ``os.fork()`` children of a parent that
was sending, one child's ``flush(10)`` returned False after 10 s and its 5 events were lost.
``instrument()`` now imports what the send path imports lazily before any sender thread runs.

The race is made certain here: an import hook holds the ``netrc`` import (as a slow disk would)
until the fork happened. Default options plus ``CIOGUARD_TRACK_URL``.
"""

from __future__ import annotations

import subprocess
import sys

from process_support import child_env

from cioguard.testing import FakeCustomerIO

APP = r"""
import importlib.abc, os, sys, threading, time
import cioguard
from customerio import CustomerIO

entered, forked = threading.Event(), threading.Event()

class SlowNetrc(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "netrc":
            entered.set()
            forked.wait(2.0)
        return None

sys.meta_path.insert(0, SlowNetrc())
cioguard.instrument()
cio = CustomerIO("site-id", "track-key")
cio.track("parent", "first_request", data={"who": "parent"})
entered.wait(5.0)  # a sender thread is inside "import netrc" (never, once instrument() did it)
pid = os.fork()
if pid == 0:
    cio.track("child", "from_child", data={"who": "child"})
    began = time.monotonic()
    ok = cioguard.flush(3)
    print("CHILD", ok, round(time.monotonic() - began, 2), flush=True)
    os._exit(0 if ok else 1)
forked.set()
_, status = os.waitpid(pid, 0)
print("PARENT", cioguard.flush(5), os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_child_forked_during_a_lazy_import_of_the_send_path_delivers(fake: FakeCustomerIO) -> None:
    done = subprocess.run(
        [sys.executable, "-c", APP],
        env=child_env(fake.track_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "CHILD True" in done.stdout, (done.stdout, done.stderr[-2000:])
    assert "PARENT True 0" in done.stdout, (done.stdout, done.stderr[-2000:])
    assert sorted(str(event.data["who"]) for event in fake.events) == ["child", "parent"]
