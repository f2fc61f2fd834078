"""Run by the subprocess tests: submit operations to a sink, then exit in various ways.

usage: child_script.py URL COUNT MODE [SPOOL [SYNC]]
MODE: exit (return without shutdown: the atexit flush must deliver), hang (wait to be killed)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sink import make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.operations.model import Endpoint


def main() -> None:
    url, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    spool = sys.argv[4] if len(sys.argv) > 4 else None
    sync = sys.argv[5] if len(sys.argv) > 5 else "group"
    endpoint = Endpoint(api="track", base_url=url, auth_header="Basic eDp5")
    engine = DeliveryEngine(
        DeliveryConfig(
            exit_timeout=1.5,
            flush_interval=0.05,
            spool_path=spool,
            spool_sync=sync,  # type: ignore[arg-type]
            retry_base=0.05,
            max_retries=50,
            max_queue_size=count // 3 if spool else 10_000,
        )
    )
    for i in range(count):
        engine.submit(make_op(endpoint, person=f"p{i % 17}", seq=i))
    if mode == "hang":
        time.sleep(0.2)  # group commit has run
        print("ready", flush=True)
        time.sleep(60)
    print("submitted", flush=True)


main()
