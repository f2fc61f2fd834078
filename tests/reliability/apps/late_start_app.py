"""A script whose first calls come while no thread can start, as during interpreter shutdown on
Python 3.12.0-3.12.1 (``RuntimeError: can't create new thread at interpreter shutdown``).

usage: late_start_app.py COUNT
An atexit hook registered after ``instrument()`` (so it runs before cioguard's exit flush) makes
``threading.Thread.start`` refuse, then sends COUNT events, ``track("p<i % 17>", "script_event",
{"who": …, "seq": i})``; nothing was sent before. Options come from ``CIOGUARD_*`` variables. The
last line ``STATS {json}`` is ``cioguard.stats()`` after cioguard's exit flush.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading

import cioguard

_refusing = False
_start = threading.Thread.start


def _refusing_start(thread: threading.Thread) -> None:
    if _refusing:
        raise RuntimeError("can't create new thread at interpreter shutdown")
    _start(thread)


def _report() -> None:
    print("STATS " + json.dumps(cioguard.stats()), flush=True)


def _late_calls(count: int) -> None:
    global _refusing
    _refusing = True
    from customerio import CustomerIO

    cio = CustomerIO("site-id", "track-key")
    for i in range(count):
        who = f"p{i % 17}"
        cio.track(who, "script_event", data={"who": who, "seq": i})


def main() -> int:
    count = int(sys.argv[1])
    # Every thread of the process, as the interpreter refuses them (not only cioguard's).
    threading.Thread.start = _refusing_start  # type: ignore[method-assign]
    atexit.register(_report)  # before instrument(): atexit is LIFO, so this runs after cioguard's hook
    cioguard.instrument()
    atexit.register(_late_calls, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
