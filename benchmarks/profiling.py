"""Profiles of the cioguard hot path (``python -m benchmarks --profile``).

For each configuration (no tracer; OTel SDK spans) the caller loop of ``track()`` runs under
``cProfile`` (exact call counts, own time per function, inflated by the profiler's per-call cost)
and, when installed, ``pyinstrument`` (sampling, nearly undistorted shares of wall time). The text
reports land next to the JSON (``results/profile-<name>.{cprofile,pyinstrument}.txt``); their paths
are recorded in the JSON ``meta.profiles``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks.cio_api import identify_all, instrumented
from benchmarks.cioguard_rows import recording_provider
from benchmarks.harness import EVENT_NAME, REALISTIC_DATA, Bench, customer_ids
from benchmarks.target import cio_target

#: Calls per profile (bounded; flushed after every chunk, so the default queue never fills).
CALLS = 50_000
CHUNK = 5_000


def _loop(bench: Bench, provider: Any, profile_chunk: Callable[[Callable[[], None]], None]) -> None:
    target = cio_target(bench)
    ids = customer_ids()
    options: dict[str, Any] = {}
    if provider is not None:
        options["tracer_provider"] = provider
    calls = CALLS // 50 if bench.sizes.caller.calls < 5_000 else CALLS
    with instrumented(track_url=target.track_url, **options) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()

            def chunk() -> None:
                for _ in range(min(CHUNK, calls)):
                    client.track(next(ids), EVENT_NAME, REALISTIC_DATA)

            for _ in range(max(1, calls // CHUNK)):
                profile_chunk(chunk)
                cg.flush()
        finally:
            client.close()


def _cprofile(bench: Bench, provider: Any, out: Path) -> Path:
    profiler = cProfile.Profile()

    def run(chunk: Callable[[], None]) -> None:
        profiler.enable()
        chunk()
        profiler.disable()

    _loop(bench, provider, run)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    out.write_text(text.getvalue())
    return out


def _pyinstrument(bench: Bench, provider: Any, out: Path) -> Path | None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    profiler = Profiler(interval=0.0001)

    def run(chunk: Callable[[], None]) -> None:
        profiler.start()
        chunk()
        profiler.stop()

    _loop(bench, provider, run)
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return out


def run(bench: Bench, folder: Path) -> dict[str, list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {}
    configs: list[tuple[str, Callable[[], AbstractContextManager[Any]]]] = [
        ("no-tracer", lambda: nullcontext(None)),
        ("otel-spans", recording_provider),
    ]
    for name, provider_context in configs:
        paths: list[str] = []
        try:
            with provider_context() as provider:
                paths.append(str(_cprofile(bench, provider, folder / f"profile-{name}.cprofile.txt")))
            with provider_context() as provider:
                path = _pyinstrument(bench, provider, folder / f"profile-{name}.pyinstrument.txt")
                if path is not None:
                    paths.append(str(path))
        except Exception as exc:  # a profile is a bonus: never fail the run for it
            paths.append(f"failed: {type(exc).__name__}: {exc}")
        written[name] = paths
    return written
