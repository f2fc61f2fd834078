"""Where the Customer.io rows send: the benchmark sink (default) or the cioguard emulator.

Both are HTTPS on 127.0.0.1 and answer at once or after a settable delay; the SDK client they hand
out is the real ``customerio.CustomerIO`` and trusts the server's throwaway CA (the process sets
``REQUESTS_CA_BUNDLE`` to it, which both the SDK's and cioguard's ``requests`` sessions honour)::

    target = cio_target(bench)
    target.set_latency(0.05)
    client = target.client()
    instrument(track_url=target.track_url)
    requests, events = target.counts()
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from benchmarks.harness import API_KEY, SITE_ID, Bench
from benchmarks.sink import SinkProcess


class CioTarget(Protocol):
    track_url: str

    def client(self) -> Any: ...

    def set_latency(self, seconds: float) -> None: ...

    def counts(self) -> tuple[int, int]:
        """(HTTP requests, events) received so far."""
        ...


class SinkTarget:
    def __init__(self, sink: SinkProcess) -> None:
        self.sink = sink
        self.track_url = sink.url

    def client(self) -> Any:
        from customerio import CustomerIO

        host, _, port = self.sink.hostport.partition(":")
        return CustomerIO(SITE_ID, API_KEY, host=host, port=int(port))

    def set_latency(self, seconds: float) -> None:
        self.sink.set_latency(seconds)

    def counts(self) -> tuple[int, int]:
        stats = self.sink.stats()
        return int(stats["requests"]), int(stats["events"])


class EmulatorTarget:
    """``cioguard.testing.FakeCustomerIO`` in sink mode (``store=False``), started once per run."""

    def __init__(self, stack: ExitStack, sink: SinkProcess) -> None:
        testing: Any = importlib.import_module("cioguard.testing")
        fake: Any = stack.enter_context(
            testing.FakeCustomerIO(https=True, site_id=SITE_ID, api_key=API_KEY, store=False)
        )
        self.fake = fake
        self.track_url: str = fake.track_url
        # REQUESTS_CA_BUNDLE beats a session's own ``verify`` in requests, and the peers still talk
        # to the sink: one bundle holding both CAs keeps every client in the process trusting both.
        if fake.ca_bundle:
            folder = Path(tempfile.mkdtemp(prefix="cioguard-bench-"))
            stack.callback(shutil.rmtree, folder, True)
            bundle = folder / "both-ca.pem"
            bundle.write_bytes(Path(sink.ca_bundle).read_bytes() + b"\n" + Path(fake.ca_bundle).read_bytes())
            os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)

    def client(self) -> Any:
        return self.fake.client()

    def set_latency(self, seconds: float) -> None:
        self.fake.latency = seconds

    def counts(self) -> tuple[int, int]:
        stats = self.fake.stats()
        return int(stats.get("requests", 0)), int(stats.get("operations", 0))


_targets: dict[int, CioTarget] = {}
_stack = ExitStack()


def cio_target(bench: Bench) -> CioTarget:
    """The run's Customer.io target (built on first use and kept for the whole run)."""
    key = id(bench)
    if key not in _targets:
        if bench.target == "emulator":
            _targets[key] = EmulatorTarget(_stack, bench.sink)
        else:
            _targets[key] = SinkTarget(bench.sink)
    return _targets[key]


def close_targets() -> None:
    _targets.clear()
    _stack.close()
