"""A script that queues events, prints ``READY`` and waits to be stopped with SIGTERM.

usage: sigterm_app.py COUNT HANDLER [return]
With ``return`` the script ends right after ``READY`` (the SIGTERM then lands in its exit flush).
HANDLER says what the app does with SIGTERM itself:

- ``none``: nothing (the default disposition: cioguard flushes, then the process dies by SIGTERM);
- ``before``: installs a handler before ``cioguard.instrument()`` (cioguard leaves it alone);
- ``after``: installs a handler after ``instrument()`` (it replaces cioguard's);
- ``chain``: installs, after ``instrument()``, a handler that calls the previous one (cioguard's).

The app's handlers print ``HANDLER RAN``; ``before``/``after`` then ``sys.exit(0)`` (atexit
flushes). Events are ``track("p<i % 17>", "script_event", {"who": …, "seq": i})``.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Any

import cioguard


def _exit_handler(signum: int, frame: FrameType | None) -> None:
    print("HANDLER RAN", flush=True)
    sys.exit(0)


def main() -> int:
    count, handler = int(sys.argv[1]), sys.argv[2]
    if handler == "before":
        signal.signal(signal.SIGTERM, _exit_handler)
    cioguard.instrument()
    if handler == "after":
        signal.signal(signal.SIGTERM, _exit_handler)
    elif handler == "chain":
        previous: Any = signal.getsignal(signal.SIGTERM)

        def chained(signum: int, frame: FrameType | None) -> None:
            print("HANDLER RAN", flush=True)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, chained)
    from customerio import CustomerIO

    cio = CustomerIO("site-id", "track-key")
    for i in range(count):
        who = f"p{i % 17}"
        cio.track(who, "script_event", data={"who": who, "seq": i})
    print("READY", flush=True)
    if sys.argv[3:] == ["return"]:
        return 0
    # Short sleeps: Python runs a handler only when the main thread executes bytecode, and a
    # delivery thread that takes SIGTERM off the kernel's queue would leave one long sleep
    # unwoken (see test_delivery_threads_leave_process_signals_to_the_main_thread).
    for _ in range(600):
        time.sleep(0.1)
    return 3  # the signal never came


if __name__ == "__main__":
    sys.exit(main())
