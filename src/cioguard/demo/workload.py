"""The demo's traffic: a seeded list of shop requests, and a driver that replays it over real HTTP.

The same list is replayed once per phase (blocking SDK, then cioguard), so the two latency columns
of the summary measure the same work.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Step:
    """One HTTP request of the workload."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class Sample:
    """One request as the client saw it."""

    started: float  # seconds since the phase began
    seconds: float
    status: int


@dataclass
class PhaseResult:
    name: str
    samples: list[Sample] = field(default_factory=list)
    wall_seconds: float = 0.0
    timeline: list[dict[str, float]] = field(default_factory=list)

    def latencies_ms(self) -> list[float]:
        return sorted(sample.seconds * 1000 for sample in self.samples)

    def failed(self) -> int:
        return sum(1 for sample in self.samples if sample.status >= 400)


def build_workload(requests: int, seed: int) -> list[Step]:
    """Sign-ups, page views and checkouts for made-up users, plus one of each deliberate mistake."""
    rng = random.Random(seed)
    steps: list[Step] = []
    number = 0
    while len(steps) < requests:
        number += 1
        user = f"user-{seed}-{number}"
        steps.append(Step("POST", "/signup", {"user": user, "plan": rng.choice(["free", "pro", "team"])}))
        for _ in range(rng.randint(1, 3)):
            steps.append(Step("GET", f"/pages/{rng.choice(['pricing', 'docs', 'blog'])}", {"user": user}))
        if rng.random() < 0.4:
            total = f"{rng.uniform(5, 200):.2f}"
            steps.append(Step("POST", "/checkout", {"user": user, "total": total, "order": f"o-{number}"}))
    steps = steps[:requests]
    mistakes = [
        Step("POST", "/legacy/import", {"user": f"user-{seed}-1"}),
        Step("POST", "/legacy/signup", {"email": f"legacy-{seed}@example.com"}),
        Step("GET", f"/products/SKU-{rng.randint(10_000, 99_999)}", {"user": f"user-{seed}-1"}),
    ]
    for offset, mistake in enumerate(mistakes):
        steps.insert(len(steps) * (offset + 1) // 4, mistake)
    return steps


def replay(
    base_url: str,
    steps: list[Step],
    *,
    name: str,
    concurrency: int,
    deadline_seconds: float,
    on_progress: Callable[[int, int], None],
    sample_stats: Callable[[], dict[str, float]] | None = None,
) -> PhaseResult:
    """Send ``steps`` with ``concurrency`` client threads; stop early at ``deadline_seconds``."""
    result = PhaseResult(name)
    lock = threading.Lock()
    next_index = 0
    done = 0
    start = time.perf_counter()
    stop = threading.Event()

    def worker() -> None:
        nonlocal next_index, done
        with httpx.Client(base_url=base_url, timeout=30.0) as http:
            while not stop.is_set():
                with lock:
                    if next_index >= len(steps) or time.perf_counter() - start > deadline_seconds:
                        return
                    step = steps[next_index]
                    next_index += 1
                began = time.perf_counter()
                try:
                    status = http.request(step.method, step.path, params=step.params).status_code
                except httpx.HTTPError:
                    status = 599
                ended = time.perf_counter()
                with lock:
                    result.samples.append(Sample(began - start, ended - began, status))
                    done += 1
                    on_progress(done, len(steps))

    def sampler() -> None:
        while not stop.wait(0.1):
            if sample_stats is not None:
                result.timeline.append({"t": time.perf_counter() - start, **sample_stats()})

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline_seconds + 60)
    result.wall_seconds = time.perf_counter() - start
    stop.set()
    watcher.join(2)
    return result


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]
