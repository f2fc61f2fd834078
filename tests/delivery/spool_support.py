"""Helpers of the spool tests: operations, a recorder that remembers spool errors, holder processes.

A *holder* is a real Python process that opens a spool, writes ``count`` rows, prints
``READY <owner>`` and keeps the spool open until its stdin closes (then it closes the spool and
exits), or until it is killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import NullRecorder

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENDPOINT = Endpoint(
    api="track", base_url="http://127.0.0.1:9", auth_header="Basic c2l0ZTprZXk=", label="track"
)


def make_op(i: int, who: str = "p", created_at: float = 0.0, size: int = 20) -> Operation:
    body = b'{"n":"' + b"x" * size + b'"}'
    return Operation(
        endpoint=ENDPOINT,
        method="track",
        route="v2",
        http_method="POST",
        path="/api/v2/batch",
        body=body,
        shard_key=who,
        op_id=f"{who}-{i:06d}",
        event_id=f"{who}-{i:06d}",
        created_at=created_at or time.time(),
    )


class SpoolErrors(NullRecorder):
    """Remembers every ``spool_error(kind)`` call (the metric's input)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def spool_error(self, kind: str) -> None:
        self.kinds.append(kind)


HOLDER = """
import sys, time
sys.path.insert(0, {src!r})
from cioguard.delivery.spool import Spool
from cioguard.operations.model import Endpoint, Operation
ep = Endpoint("track", "http://127.0.0.1:9", "Basic c2l0ZTprZXk=", "track")
spool = Spool({path!r}, "always")
for i in range({count}):
    spool.add(Operation(endpoint=ep, method="track", route="v2", http_method="POST", path="/api/v2/batch",
                        body=b"{{}}", shard_key="h", op_id=f"h-{{i:06d}}", event_id=f"h-{{i:06d}}"))
spool.drain()
print("READY", spool._owner, flush=True)
sys.stdin.read()
spool.close()
"""


def start_holder(path: str, count: int, prefix: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start a holder (optionally under a wrapper such as ``unshare --pid --fork``)."""
    code = HOLDER.format(src=SRC, path=path, count=count)
    process = subprocess.Popen(
        [*prefix, sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"holder did not start: {line!r} {err}")
    return process, line.split()[1]


def stop_holder(process: subprocess.Popen[str]) -> None:
    try:
        process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait(10)
