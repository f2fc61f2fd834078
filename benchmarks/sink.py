"""A counting HTTPS sink in its own process: the "remote server" every benchmark row sends to.

It answers ``200 {}`` to any method on any path (Customer.io ``/api/v1/...`` and ``/api/v2/batch``,
Segment ``/v1/batch``, PostHog ``/batch/``), after an optional per-request delay, and counts requests,
bytes and events (the length of a top-level ``"batch"`` list, else 1). It runs in a subprocess so its
work never competes with the measured process for the GIL, as a real remote endpoint would not::

    with SinkProcess.start() as sink:          # HTTPS with a throwaway trustme CA
        os.environ["REQUESTS_CA_BUNDLE"] = sink.ca_bundle
        sink.set_latency(0.05)
        ...                                     # send to sink.url
        print(sink.stats())                    # {"requests": .., "events": .., "bytes": ..}

Control paths (never used by the clients under test): ``GET /__stats``, ``POST /__reset``,
``POST /__latency/<seconds>``, ``POST /__hold`` (requests wait, bounded, until ``POST /__release``).
Run it by hand with ``python -m benchmarks.sink [--http]``; it prints ``<url> <ca_path>`` on one line.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

#: A held request gives up waiting after this long, so a crashed harness never wedges the sink.
MAX_HOLD_SECONDS = 60.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.events = 0
        self.bytes = 0
        self.latency = 0.0
        self.released = threading.Event()
        self.released.set()

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return {"requests": self.requests, "events": self.events, "bytes": self.bytes}


def _count_events(body: bytes) -> int:
    # Only bodies that look like a batch are parsed; everything else is one event.
    if b'"batch"' not in body[:64] and b'"batch"' not in body[-4096:]:
        return 1
    try:
        decoded = json.loads(body)
    except ValueError:
        return 1
    batch = decoded.get("batch") if isinstance(decoded, dict) else None
    return len(batch) if isinstance(batch, list) else 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True
    state: _State  # set on the subclass made by serve()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, payload: bytes = b"{}") -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.state
        if self.path.startswith("/__"):
            self._control(self.path)
            return
        if not state.released.is_set():
            state.released.wait(MAX_HOLD_SECONDS)
        if state.latency > 0:
            time.sleep(state.latency)
        events = _count_events(body) if body else 1
        with state.lock:
            state.requests += 1
            state.events += events
            state.bytes += len(body)
        self._reply()

    def _control(self, path: str) -> None:
        state = self.state
        if path == "/__stats":
            self._reply(json.dumps(state.snapshot()).encode())
            return
        if path == "/__reset":
            with state.lock:
                state.requests = state.events = state.bytes = 0
        elif path.startswith("/__latency/"):
            state.latency = float(path.rsplit("/", 1)[1])
        elif path == "/__hold":
            state.released.clear()
        elif path == "/__release":
            state.released.set()
        self._reply()

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def serve(https: bool = True) -> None:
    """Run the sink on an ephemeral 127.0.0.1 port until stdin closes; print ``url ca_path``."""
    state = _State()
    handler = type("SinkHandler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    ca_path = ""
    if https:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        folder = Path(tempfile.mkdtemp(prefix="cioguard-bench-"))
        ca_path = str(folder / "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if https else "http"
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"{scheme}://127.0.0.1:{port} {ca_path}", flush=True)
    sys.stdin.read()  # the parent closes our stdin (or dies) -> we exit
    server.shutdown()


@dataclass
class SinkProcess:
    """Handle on a sink subprocess; use :meth:`start` as a context manager."""

    process: subprocess.Popen[str]
    url: str
    ca_bundle: str

    @classmethod
    def start(cls, https: bool = True, timeout: float = 20.0) -> SinkProcess:
        args = [sys.executable, "-m", "benchmarks.sink"] + ([] if https else ["--http"])
        root = str(Path(__file__).resolve().parent.parent)
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("benchmark sink failed to start")
        url, _, ca_bundle = line.strip().partition(" ")
        sink = cls(process=process, url=url, ca_bundle=ca_bundle)
        sink.wait_ready(deadline)
        return sink

    def _call(self, method: str, path: str) -> bytes:
        context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            body: bytes = response.read()
            return body

    def wait_ready(self, deadline: float) -> None:
        while True:
            try:
                self._call("GET", "/__stats")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = json.loads(self._call("GET", "/__stats"))
        return data

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def set_latency(self, seconds: float) -> None:
        self._call("POST", f"/__latency/{seconds}")

    def hold(self) -> None:
        """Make every following request wait (at most a minute) until :meth:`release`."""
        self._call("POST", "/__hold")

    def release(self) -> None:
        self._call("POST", "/__release")

    @property
    def hostport(self) -> str:
        return self.url.split("://", 1)[1]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> SinkProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args(argv)
    serve(https=not args.http)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
