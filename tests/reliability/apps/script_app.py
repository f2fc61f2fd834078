"""A plain script that sends events through the instrumented SDK, for the real-process tests.

usage: script_app.py COUNT MODE
Options come from ``CIOGUARD_*`` variables (track URL, exit_timeout, spool_path …). Each event is
``track("p<i % 17>", "script_event", {"who": …, "seq": i})``. Modes:

- ``exit``: send COUNT events and return without calling shutdown (the atexit flush delivers);
- ``sigterm``: send, print ``READY``, sleep until SIGTERM, whose handler calls ``sys.exit(0)``;
- ``stream``: send up to COUNT events, printing ``SENT <i>`` after every 50 accepted ones (the
  test kills it with SIGKILL mid-stream);
- ``drain``: send nothing; deliver what the spool holds (``flush``), then exit.

After cioguard's own atexit hook ran, a line ``STATS {json}`` gives ``cioguard.stats()`` (our hook is
registered first, so it runs last). The test times the exit from the ``READY`` line.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import time

import cioguard


def _report() -> None:
    print("STATS " + json.dumps(cioguard.stats()), flush=True)


def main() -> int:
    count, mode = int(sys.argv[1]), sys.argv[2]
    atexit.register(_report)  # before instrument(): atexit is LIFO, so this runs after cioguard's hook
    cioguard.instrument()
    from customerio import CustomerIO

    cio = CustomerIO("site-id", "track-key")
    if mode == "drain":
        print("DRAINED", cioguard.flush(timeout=30.0), flush=True)
        return 0
    if mode == "sigterm":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for i in range(count):
        who = f"p{i % 17}"
        cio.track(who, "script_event", data={"who": who, "seq": i})
        if mode == "stream" and i % 50 == 49:
            print(f"SENT {i}", flush=True)
            time.sleep(0.002)
    print("READY", flush=True)
    if mode == "sigterm":
        time.sleep(60)
        return 3  # the signal never came
    return 0


if __name__ == "__main__":
    sys.exit(main())
