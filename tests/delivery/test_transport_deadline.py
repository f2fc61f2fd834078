"""The default transport bounds a whole request, not only each read: a server that trickles its
answer (each byte well within the read timeout) is cut off as a ``timeout`` after
``WHOLE_REQUEST_FACTOR`` times the request timeout. Real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from cioguard.delivery.deadline import WATCHED_POOLS, WHOLE_REQUEST_FACTOR, _cut
from cioguard.delivery.transport import RequestsTransport, TransportError

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


def _serve(listener: socket.socket, gap: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue  # look at ``stop`` again
        except OSError:
            return
        with conn:
            conn.recv(65536)
            for byte in ANSWER:  # bounded: len(ANSWER) bytes, one every ``gap`` seconds
                if stop.wait(gap):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break


@pytest.fixture
def trickle() -> Iterator[Callable[[float], str]]:
    """``trickle(gap)``: the URL of a server answering one byte every ``gap`` seconds."""
    stop = threading.Event()
    started: list[tuple[socket.socket, threading.Thread]] = []

    def start(gap: float) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.2)  # accept() wakes to see ``stop``
        thread = threading.Thread(target=_serve, args=(listener, gap, stop), daemon=True)
        thread.start()
        started.append((listener, thread))
        return f"http://127.0.0.1:{listener.getsockname()[1]}/api/v2/batch"

    yield start
    stop.set()
    for listener, thread in started:
        listener.close()
        thread.join(5)


def test_a_trickled_answer_is_cut_off_as_a_timeout(trickle: Callable[[float], str]) -> None:
    transport = RequestsTransport()
    timeout = 0.5  # a byte every 0.1 s (~6 s in all): only the whole-request deadline stops it
    began = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.send("POST", trickle(0.1), b"{}", {"content-type": "application/json"}, timeout)
    took = time.monotonic() - began
    assert caught.value.kind == "timeout"
    assert "answer not complete" in str(caught.value)
    assert WHOLE_REQUEST_FACTOR * timeout <= took < WHOLE_REQUEST_FACTOR * timeout + 1.0
    transport.close()


def test_a_slow_answer_within_the_deadline_is_untouched(trickle: Callable[[float], str]) -> None:
    transport = RequestsTransport()
    response = transport.send("POST", trickle(0.01), b"{}", {}, 0.5)  # ~0.6 s, deadline 1.5 s
    assert response.status == 200
    assert response.body == b"{}"
    transport.close()


def test_the_socket_behind_an_https_proxy_is_reached_and_nothing_escapes() -> None:
    """Through an HTTPS proxy urllib3 wraps the socket in an SSLTransport (no shutdown())."""
    left, right = socket.socketpair()

    class Transport:  # what urllib3.util.ssltransport.SSLTransport exposes
        socket = left

    class Connection:
        sock = Transport()

    _cut(Connection())
    assert left.recv(1) == b""  # shut down: a blocked read returns at once
    _cut(object())  # no socket at all: nothing raised
    left.close()
    right.close()


def test_socks_proxy_managers_keep_their_own_pools() -> None:
    from urllib3.contrib.socks import SOCKSProxyManager  # PySocks: a dev dependency

    adapter = RequestsTransport()._session.get_adapter("https://track.customer.io")
    manager = adapter.proxy_manager_for("socks5://127.0.0.1:1080")
    assert isinstance(manager, SOCKSProxyManager)
    assert manager.pool_classes_by_scheme is not WATCHED_POOLS
    assert adapter.proxy_manager_for("http://127.0.0.1:3128").pool_classes_by_scheme is WATCHED_POOLS
