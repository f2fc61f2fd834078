"""HTTP(S) transport of the emulator: a threaded HTTP/1.1 keep-alive server on 127.0.0.1.

:class:`EmulatorServer` accepts connections (TLS is negotiated in the connection's own thread, so a
slow client cannot block the accept loop), parses requests and hands each one to ``app.serve(request,
connection)``. The :class:`Connection` lets the app answer, wait (interruptibly), drop or reset.

:meth:`EmulatorServer.stop` is clean: it stops accepting, wakes every stall, shuts down every open
connection (which interrupts threads blocked reading a keep-alive connection) and joins all threads.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from cioguard.testing.reply import Reply

MAX_BODY = 16_000_000  # larger bodies get 413 and the connection is closed without reading them
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may stay idle


@dataclass(frozen=True)
class Incoming:
    """A parsed request. ``headers`` never contains ``Authorization`` (kept apart in ``authorization``)."""

    method: str
    path: str
    headers: dict[str, str]
    authorization: str | None
    body: bytes


class App(Protocol):
    def serve(self, request: Incoming, connection: Connection) -> None: ...


class Connection:
    """The app's handle on one request's connection."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler

    def send(self, reply: Reply) -> None:
        body = b"" if reply.payload is None else json.dumps(reply.payload).encode()
        handler = self._handler
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the server is stopping (the caller should drop)."""
        return self._handler.emulator_server.stopping.wait(seconds)

    def drop(self) -> None:
        """Close the connection without a response (FIN)."""
        self._handler.close_connection = True
        _quiet_close(self._handler.connection)

    def reset(self) -> None:
        """Abort the connection with a TCP RST: SO_LINGER on with a 0 s timeout, then close."""
        self._handler.close_connection = True
        sock = self._handler.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _quiet_close(sock)


def _quiet_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "FakeCustomerIO"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered: headers and body leave in one write, flushed after each request
    server: EmulatorServer

    @property
    def emulator_server(self) -> EmulatorServer:
        return self.server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # errors end this connection only (see handle_error)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence: tests read fake.requests instead

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            status = 413 if size > MAX_BODY else 411
            Connection(self).send(Reply(status, {"meta": {"error": "unsupported or missing body length"}}))
            return
        body = self.rfile.read(size) if size else b""
        if len(body) < size:
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        request = Incoming(self.command, self.path, headers, self.headers.get("Authorization"), body)
        self.server.app.serve(request, Connection(self))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class EmulatorServer(ThreadingHTTPServer):
    """Threaded server with tracked connections and threads (see the module docstring)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: App, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.stopping = threading.Event()
        self.handler_errors = 0
        self.accepted = 0  # connections accepted: with keep-alive, far fewer than requests
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._loop: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # skip HTTPServer.server_bind's getfqdn(), a DNS lookup that can take seconds offline
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_connection, args=(request, client_address), name="fake-cio-conn", daemon=True
        )
        with self._lock:
            if self.stopping.is_set():
                self.shutdown_request(request)
                return
            self.accepted += 1
            self._conns.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._conns.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.handler_errors += 1  # a client that went away, a failed TLS handshake…: never print

    def start(self) -> None:
        self._loop = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-cio-accept", daemon=True
        )
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()  # wakes stalls and latency waits
        if self._loop is not None:
            self.shutdown()
            self._loop.join(timeout)
        self.server_close()
        with self._lock:
            conns, threads = list(self._conns), list(self._conn_threads)
        for conn in conns:
            # plain socket shutdown, also for TLS sockets: interrupts a blocked read at once
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout)

    def live_threads(self) -> int:
        with self._lock:
            return len(self._conn_threads)
