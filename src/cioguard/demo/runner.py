"""Runs the demo: emulator + shop under uvicorn, the blocking-SDK phase, then the cioguard phase."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

import cioguard
from cioguard.demo.app import build_app
from cioguard.demo.workload import PhaseResult, Sampler, build_workload, replay
from cioguard.pitfalls import PitfallWarning
from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import WebhookReceiver, sign

SIGNING_KEY = "demo-webhook-signing-key"


@dataclass
class DemoSettings:
    requests: int = 240
    concurrency: int = 4
    latency: float = 0.05
    duration: float = 30.0
    seed: int = 7
    serve: bool = False
    report: str | None = None
    port: int = 0


@dataclass
class PitfallSeen:
    code: str
    count: int
    location: str
    message: str


@dataclass
class DemoOutcome:
    settings: DemoSettings
    phases: list[PhaseResult] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    pitfalls: list[PitfallSeen] = field(default_factory=list)
    #: cioguard's log lines during the cioguard phase (held back so they never cut the progress bar)
    log: list[str] = field(default_factory=list)
    emulator: dict[str, Any] = field(default_factory=dict)
    app_url: str = ""
    emulator_url: str = ""

    @property
    def lost(self) -> int:
        """Accepted operations that were neither delivered nor counted as dropped."""
        accepted = int(self.stats.get("accepted", 0))
        delivered = int(self.stats.get("delivered", 0))
        dropped = sum(int(n) for n in dict(self.stats.get("dropped", {})).values())
        return max(0, accepted - delivered - dropped)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo's main thread owns signals
        pass


@contextlib.contextmanager
def _serve(app: Any, port: int) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the demo web app did not start within 10 s")
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)


class _Held(logging.Handler):
    """Keeps cioguard's log records for after the progress bar (one line per distinct message)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "cioguard.pitfalls":
            return  # listed with the pitfalls
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if line not in self.lines:
            self.lines.append(line)


@contextlib.contextmanager
def _hold_logs(lines: list[str]) -> Iterator[None]:
    log = logging.getLogger("cioguard")
    handler, propagate = _Held(lines), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


@contextlib.contextmanager
def _collect_pitfalls(found: dict[str, PitfallSeen]) -> Iterator[None]:
    """Record every pitfall warning (code, first location) while still showing nothing twice."""
    original = warnings.showwarning

    def showwarning(
        message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(category, type) and issubclass(category, PitfallWarning):
            code = getattr(category, "code", "CIO000")
            seen = found.get(code)
            if seen is None:
                found[code] = PitfallSeen(code, 1, f"{filename}:{lineno}", str(message))
            else:
                seen.count += 1
            return
        original(message, category, filename, lineno, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", PitfallWarning)
        warnings.showwarning = showwarning
        try:
            yield
        finally:
            warnings.showwarning = original


def _progress(label: str) -> Any:
    interactive = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if not interactive and done < total:
            return
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r  {label:<14} [{bar}] {done:>5}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _stats_sample() -> dict[str, float]:
    stats = cioguard.stats()
    return {
        "accepted": float(stats.get("accepted", 0)),
        "delivered": float(stats.get("delivered", 0)),
        "rate_limited": float(stats.get("rate_limited", 0)),
        "retries": float(stats.get("retries", 0)),
    }


def _inject_faults(fake: FakeCustomerIO) -> None:
    """A few 500s, then a burst of 429s with Retry-After: what a busy Customer.io day looks like."""
    fake.fail_next(2, status=500, path="/api/")
    fake.fail_next(3, status=429, retry_after=1, path="/api/")


def _send_bounce(base_url: str, user: str) -> int:
    body = json.dumps(
        {
            "event_id": "01HDEMO0BOUNCE000000000001",
            "object_type": "email",
            "metric": "bounced",
            "timestamp": int(time.time()),
            "data": {
                "customer_id": user,
                "identifiers": {"id": user},
                "delivery_id": "d-1",
                "recipient": f"{user}@example.com",
                "failure_message": "mailbox unavailable",
            },
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-CIO-Timestamp": timestamp,
        "X-CIO-Signature": sign(SIGNING_KEY, timestamp, body),
        "Content-Type": "application/json",
    }
    return httpx.post(
        f"{base_url}/webhooks/customerio/", content=body, headers=headers, timeout=10
    ).status_code


def run_demo(settings: DemoSettings) -> DemoOutcome:
    outcome = DemoOutcome(settings)
    steps = build_workload(settings.requests, settings.seed)
    found: dict[str, PitfallSeen] = {}
    with FakeCustomerIO(https=True, latency=settings.latency) as fake, fake.trust():
        client, api = fake.client(), fake.api_client()
        receiver = WebhookReceiver(SIGNING_KEY, client=client, on_bounce="unsubscribe")
        with _serve(build_app(client, api, receiver), settings.port) as base_url:
            outcome.app_url, outcome.emulator_url = base_url, fake.url
            # Phase 1: the plain SDK, exactly as the seeds' applications run it.
            _inject_faults(fake)
            outcome.phases.append(
                replay(
                    base_url,
                    steps,
                    name="blocking SDK",
                    concurrency=settings.concurrency,
                    deadline_seconds=settings.duration,
                    on_progress=_progress("blocking SDK"),
                )
            )
            # Phase 2: the same app and traffic, after one line: cioguard.instrument().
            with _collect_pitfalls(found), _hold_logs(outcome.log):
                cioguard.instrument(track_url=fake.track_url, api_url=fake.api_url, flush_interval=0.25)
                _inject_faults(fake)
                sampler = Sampler(_stats_sample)
                outcome.phases.append(
                    replay(
                        base_url,
                        steps,
                        name="cioguard",
                        concurrency=settings.concurrency,
                        deadline_seconds=settings.duration,
                        on_progress=_progress("cioguard"),
                        sampler=sampler,
                    )
                )
                _send_bounce(base_url, steps[0].params.get("user", "user-1"))
                cioguard.flush(timeout=15)
                # sampled through the flush, so the delivered curve runs to the end without a gap
                outcome.phases[-1].timeline = sampler.stop()
            outcome.stats = cioguard.stats()
            outcome.emulator = fake.stats()
            outcome.pitfalls = sorted(found.values(), key=lambda seen: seen.code)
            if settings.serve:
                _serve_forever(outcome)
            cioguard.uninstrument(timeout=10)
    return outcome


def _serve_forever(outcome: DemoOutcome) -> None:
    print(
        f"\nserving: app {outcome.app_url} (metrics at {outcome.app_url}/metrics), "
        f"emulator {outcome.emulator_url}; Ctrl-C to stop",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)
