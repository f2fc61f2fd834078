"""ASGI and WSGI applications around :class:`~cioguard.webhooks.receiver.WebhookReceiver`.

Mount them wherever your framework mounts sub-applications::

    receiver = WebhookReceiver(os.environ["CUSTOMERIO_WEBHOOK_SIGNING_KEY"])
    starlette_app = Starlette(routes=[Route("/webhooks/customerio", receiver.asgi_app(), methods=["POST"])])
    flask_app.wsgi_app = DispatcherMiddleware(
        flask_app.wsgi_app, {"/webhooks/customerio": receiver.wsgi_app()}
    )

Use a Starlette ``Route``, not ``Mount``: a mount answers 307 at the exact URL you configure in
Customer.io (it redirects ``/webhooks/customerio`` to ``/webhooks/customerio/``), and Customer.io
does not follow redirects.

The ASGI app never blocks the event loop: the signature check, the JSON parse, your ``on_event``
callback and the client call run in the loop's default thread pool (``run_in_executor``, with the
caller's context copied). Body reading stops as soon as it passes ``max_body``, and a body not
received within the receiver's ``read_timeout`` answers 408: ASGI waits on ``receive()`` with that
deadline; WSGI arms a timer that shuts the socket's read side when the server exposes the socket
(gunicorn's ``gunicorn.socket``, werkzeug's ``werkzeug.socket``), so a slow sender cannot hold a sync
worker; other WSGI servers are checked between chunks and should set their own socket timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import io
import socket
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cioguard.asgi import Receive, Scope, Send
from cioguard.webhooks.receiver import WebhookReceiver, WebhookResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
}
_CHUNK = 64 * 1024


class WebhookASGIApp:
    """The receiver as an ASGI 3 application (``http``; ``lifespan`` is acknowledged)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            # A websocket (or unknown) connection: refuse it rather than hang.
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        response = self.receiver.precheck(scope["method"], headers.get("content-length"))
        if response is None:
            body = await self._read_body(receive)
            if isinstance(body, WebhookResponse):
                response = body
            else:
                loop = asyncio.get_running_loop()
                call = functools.partial(self.receiver.handle, scope["method"], headers, body)
                response = await loop.run_in_executor(None, contextvars.copy_context().run, call)
        await _send_response(send, response)

    async def _read_body(self, receive: Receive) -> bytes | WebhookResponse:
        """The whole body; 413 as soon as it exceeds ``max_body``, 408 past ``read_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.receiver.read_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except asyncio.TimeoutError:
                return self.receiver.too_slow()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.receiver.max_body:
                return self.receiver.oversize()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_response(send: Send, response: WebhookResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(response.body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class WebhookWSGIApp:
    """The receiver as a WSGI application."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        length = environ.get("CONTENT_LENGTH") or None
        response = self.receiver.precheck(method, length)
        if response is None:
            body = self._read_body(environ, length)
            if isinstance(body, WebhookResponse):
                response = body
            else:
                headers = {
                    key[5:].replace("_", "-").lower(): str(value)
                    for key, value in environ.items()
                    if key.startswith("HTTP_")
                }
                if environ.get("CONTENT_TYPE"):
                    headers["content-type"] = str(environ["CONTENT_TYPE"])
                response = self.receiver.handle(method, headers, body)
        status = f"{response.status} {_REASONS.get(response.status, '')}".rstrip()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(response.body)))]
        )
        return [response.body]

    def _read_body(self, environ: WSGIEnvironment, length: str | None) -> bytes | WebhookResponse:
        stream: io.BufferedIOBase = environ["wsgi.input"]
        if length is None and not environ.get("wsgi.input_terminated"):
            # Without a length, reading an unterminated stream could block until the client hangs up.
            return self.receiver.reject(411, "length_required", "Content-Length is required")
        # precheck() validated the length as digits within max_body.
        want = int(length) if length is not None else None
        chunks: list[bytes] = []
        size = 0
        with _ReadDeadline(environ, self.receiver.read_timeout) as deadline:
            while want is None or size < want:
                try:
                    chunk = stream.read(_CHUNK if want is None else min(_CHUNK, want - size))
                except Exception:
                    if deadline.expired():
                        return self.receiver.too_slow()
                    raise
                if not chunk:
                    break  # end of a terminated stream, or the sender went away (or was cut off)
                size += len(chunk)
                if size > self.receiver.max_body:
                    return self.receiver.oversize()
                chunks.append(chunk)
            short = want is None or size < want  # the stream ended early, or had no length
            if short and deadline.expired():
                return self.receiver.too_slow()
        return b"".join(chunks)


class _ReadDeadline:
    """Bounds one WSGI body read: past ``seconds`` a timer shuts the socket's read side, so a
    blocked ``read()`` returns or raises at once (writing the 408 still works)."""

    def __init__(self, environ: WSGIEnvironment, seconds: float) -> None:
        self._socket: Any = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._fired = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _ReadDeadline:
        if isinstance(self._socket, socket.socket):
            self._timer = threading.Timer(self._seconds, self._cut)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _cut(self) -> None:
        self._fired = True
        with contextlib.suppress(OSError):  # already closed by the server: nothing left to cut
            self._socket.shutdown(socket.SHUT_RD)

    def expired(self) -> bool:
        return self._fired or time.monotonic() > self._deadline
