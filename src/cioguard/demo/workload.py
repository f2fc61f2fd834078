"""The demo's traffic: a seeded list of shop requests, and a driver that replays it over real HTTP.

The same list is replayed once per phase (blocking SDK, then cioguard), so the two latency columns
of the summary measure the same work. A seed gives the same requests every time, and each person's
requests always go through one client in list order (a sign-up before that person's page views), so
the pitfalls found are the same from run to run too.
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
    """Exactly ``requests`` steps: sign-ups, page views and checkouts, with one of each deliberate mistake."""
    rng = random.Random(seed)
    steps: list[Step] = []
    number = 0
    mistakes_count = 3
    while len(steps) < requests - mistakes_count:
        number += 1
        user = f"user-{seed}-{number}"
        steps.append(Step("POST", "/signup", {"user": user, "plan": rng.choice(["free", "pro", "team"])}))
        for _ in range(rng.randint(1, 3)):
            steps.append(Step("GET", f"/pages/{rng.choice(['pricing', 'docs', 'blog'])}", {"user": user}))
        if rng.random() < 0.4:
            total = f"{rng.uniform(5, 200):.2f}"
            steps.append(Step("POST", "/checkout", {"user": user, "total": total, "order": f"o-{number}"}))
    steps = steps[: requests - mistakes_count]
    mistakes = [
        Step("POST", "/legacy/import", {"user": f"user-{seed}-1"}),
        Step("POST", "/legacy/signup", {"email": f"legacy-{seed}@example.com"}),
        Step("GET", f"/products/SKU-{rng.randint(10_000, 99_999)}", {"user": f"user-{seed}-1"}),
    ]
    for offset, mistake in enumerate(mistakes):
        steps.insert(len(steps) * (offset + 1) // 4, mistake)
    return steps


def shard(steps: list[Step], workers: int) -> list[list[int]]:
    """Step indexes per worker: all of one person's steps on one worker, in list order."""
    queues: list[list[int]] = [[] for _ in range(workers)]
    owner: dict[str, int] = {}
    for index, step in enumerate(steps):
        person = step.params.get("user") or step.params.get("email") or step.path
        if person not in owner:
            owner[person] = len(owner) % workers
        queues[owner[person]].append(index)
    return queues


class Sampler:
    """Samples ``stats()`` every ``interval`` seconds from :meth:`begin` until :meth:`stop` (a thread)."""

    def __init__(self, stats: Callable[[], dict[str, float]], interval: float = 0.1) -> None:
        self.rows: list[dict[str, float]] = []
        self._stats = stats
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start = 0.0

    def begin(self, start: float) -> None:
        self.start = start
        self._thread = threading.Thread(target=self._run, name="cioguard-demo-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        self.rows.append({"t": time.perf_counter() - self.start, **self._stats()})

    def stop(self) -> list[dict[str, float]]:
        """Stop, take one last sample (the end of the curve), and return every row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.sample()
        return self.rows


def replay(
    base_url: str,
    steps: list[Step],
    *,
    name: str,
    concurrency: int,
    deadline_seconds: float,
    on_progress: Callable[[int, int], None],
    sampler: Sampler | None = None,
) -> PhaseResult:
    """Send ``steps`` with ``concurrency`` client threads; stop early at ``deadline_seconds``.

    A ``sampler`` is started with the phase's clock; the caller stops it (after flushing), so the
    curves run to the end of delivery.
    """
    result = PhaseResult(name)
    lock = threading.Lock()
    done = 0
    start = time.perf_counter()
    queues = shard(steps, concurrency)

    def worker(queue: list[int]) -> None:
        nonlocal done
        with httpx.Client(base_url=base_url, timeout=30.0) as http:
            for index in queue:
                if time.perf_counter() - start > deadline_seconds:
                    return
                step = steps[index]
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

    threads = [threading.Thread(target=worker, args=(queue,), daemon=True) for queue in queues]
    if sampler is not None:
        sampler.begin(start)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline_seconds + 60)
    result.wall_seconds = time.perf_counter() - start
    return result


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]
