"""A producer process for the scale-out tests: ``python producer_child.py REDIS_URL FAKE_URL TAG
PEOPLE EVENTS SECONDS`` submits EVENTS events for each of PEOPLE people over about SECONDS, then
flushes and prints its stats as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scaleout_helpers import event_op

from cioguard.operations.model import Endpoint
from cioguard.scaleout import RedisProducer


def main() -> int:
    url, base, tag, people, events, seconds = sys.argv[1:7]
    endpoint = Endpoint(api="track", base_url=base, auth_header=sys.argv[7], label="track")
    producer = RedisProducer(url, partitions=8, max_buffer=100_000, reconnect_interval=0.05)
    names = [f"{tag}-{i}" for i in range(int(people))]
    total = int(events)
    pause = float(seconds) / total
    start = time.monotonic()
    for seq in range(total):
        for name in names:
            producer.submit(event_op(endpoint, name, seq, tag))
        # Spread the load over the run (bounded: never beyond `seconds` + the flush).
        lag = start + seq * pause - time.monotonic()
        if lag > 0:
            time.sleep(lag)
    ok = producer.flush(30)
    stats = producer.stats()
    producer.shutdown(5)
    print(json.dumps({"flushed": ok, **{k: v for k, v in stats.items() if k != "fallback_stats"}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
