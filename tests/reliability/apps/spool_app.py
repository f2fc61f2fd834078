"""An app with a durable spool, for the spool tests: only ``cioguard.instrument()`` in the code.

usage: spool_app.py MODE [COUNT WHO]
Options come from ``CIOGUARD_*`` variables (``spool_path``, ``track_url``; nothing tuned). Modes:

- ``send COUNT WHO``: ``COUNT`` ``track()`` calls as person ``WHO<i % 7>`` with data
  ``{"who": ..., "seq": i}``; prints ``SENT COUNT``, then waits until stdin closes and exits
  normally (the atexit flush runs; with a dead endpoint the spool keeps what is left);
- ``drain``: sends nothing; prints ``DRAINED <flush result> <seconds> <stats json>`` after
  ``cioguard.flush(30)`` (what the spool held is delivered), then exits.
"""

from __future__ import annotations

import json
import sys
import time

import cioguard


def main() -> int:
    mode = sys.argv[1]
    began = time.monotonic()
    cioguard.instrument()
    from customerio import CustomerIO

    cio = CustomerIO("site-id", "track-key")
    if mode == "drain":
        ok = cioguard.flush(timeout=30.0)
        print("DRAINED", ok, round(time.monotonic() - began, 3), json.dumps(cioguard.stats()), flush=True)
        return 0
    count, who = int(sys.argv[2]), sys.argv[3]
    for i in range(count):
        person = f"{who}{i % 7}"
        cio.track(person, "spool_event", data={"who": person, "seq": i})
    print("SENT", count, flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
