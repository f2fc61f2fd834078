"""Start the examples as real server processes (uvicorn, gunicorn) for the slow tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM, wait for exit (killed after ``timeout``); return the seconds it took."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                raise AssertionError(f"server ignored SIGTERM for {timeout} s:\n{self.output()}") from None
        return time.monotonic() - started


def example_env(emulator_url: str, **extra: str) -> dict[str, str]:
    """The environment the examples document, pointed at an emulator."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CIOGUARD_", "CUSTOMERIO_", "PROMETHEUS_"))
    }
    env.update(
        CIOGUARD_TRACK_URL=emulator_url,
        CIOGUARD_API_URL=emulator_url,
        CUSTOMERIO_SITE_ID="site-id",
        CUSTOMERIO_TRACK_API_KEY="track-key",
        CUSTOMERIO_APP_API_KEY="app-key",
        CUSTOMERIO_WEBHOOK_SIGNING_KEY="dev-signing-key",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def run_server(
    argv: list[str],
    port: int,
    env: Mapping[str, str],
    log: Path,
    ready_timeout: float = 30.0,
    new_session: bool = False,
) -> Iterator[Server]:
    """Start ``argv``, wait until ``/healthz`` answers, yield; always stopped afterwards.
    ``new_session``: its own process group, for a terminal's Ctrl-C (``os.killpg``)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=new_session,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {ready_timeout} s:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            if new_session:  # the whole group: runserver's reloader has a child
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            process.wait(timeout=5)


def uvicorn(module: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(EXAMPLES),
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "warning",
    ]  # fmt: skip


def gunicorn(port: int) -> list[str]:
    argv = [str(BIN / "gunicorn"), "-c", str(EXAMPLES / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        # gunicorn >= 25 opens a control socket at one per-user path: parallel servers would collide.
        argv.append("--no-control-socket")
    return argv


def scrape_until(http: httpx.Client, name: str, minimum: float, timeout: float = 10.0) -> str:
    """``/metrics`` once the samples of ``name`` add up to ``minimum``: with several workers, the
    others report their tallied blocked time within a second (cioguard.blocked), not at this scrape."""
    deadline = time.monotonic() + timeout
    while True:
        text = http.get("/metrics").text
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.split("{")[0].split(" ")[0] == name
        )
        if total >= minimum or time.monotonic() > deadline:
            return text
        time.sleep(0.1)
