"""Transport: HTTPS trust helpers, keep-alive, clean stop, threads, sink mode, wait_for."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time

import pytest
import requests

from cioguard.testing import FakeCustomerIO

AUTH = {"Authorization": "Basic " + base64.b64encode(b"site-id:track-key").decode()}


def test_https_with_ssl_context_keeps_one_connection_alive(fake: FakeCustomerIO) -> None:
    assert fake.url == f"https://127.0.0.1:{fake.port}"
    assert fake.track_url == fake.api_url == fake.url
    assert fake.ca_bundle is not None
    assert os.path.exists(fake.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=fake.ssl_context(), timeout=5)
    for n in range(3):
        conn.request("PUT", f"/api/v1/customers/u{n}", body=b"{}", headers=AUTH)
        response = conn.getresponse()
        assert (response.status, response.read(), response.version) == (200, b"{}", 11)
        assert response.getheader("Connection") != "close"
    conn.close()
    assert len(fake.people) == 3
    assert fake.stats()["connections"] == 1


def test_untrusted_clients_fail_the_handshake(fake: FakeCustomerIO) -> None:
    session = requests.Session()
    session.trust_env = False  # the system CA store does not know the throw-away CA
    with pytest.raises(requests.exceptions.SSLError):
        session.put(fake.url + "/api/v1/customers/u1", json={}, timeout=5)
    session.close()
    assert fake.requests == []
    assert fake.client().identify("u1").status_code == 200  # the server survived the failed handshake


def test_trust_sets_requests_ca_bundle_for_self_built_clients(fake: FakeCustomerIO) -> None:
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    with fake.trust():
        assert os.environ["REQUESTS_CA_BUNDLE"] == fake.ca_bundle
        response = requests.put(
            fake.url + "/api/v1/customers/u1", json={}, auth=("site-id", "track-key"), timeout=5
        )
        assert response.status_code == 200
    assert os.environ.get("REQUESTS_CA_BUNDLE") == before


def test_sdk_client_without_connection_pooling_trusts_the_ca(fake: FakeCustomerIO) -> None:
    cio = fake.client(use_connection_pooling=False)
    assert cio.track("u1", "a").status_code == 200
    assert fake.api_client(use_connection_pooling=False).send_inbox_message(
        {"transactional_message_id": 1, "identifiers": {"id": "u1"}}
    )["delivery_id"]


def test_http_mode_has_no_ca_and_refuses_an_sdk_track_client(http_fake: FakeCustomerIO) -> None:
    assert http_fake.url.startswith("http://")
    assert http_fake.ca_bundle is None
    assert http_fake.ssl_context() is None
    with pytest.raises(ValueError, match="https"):
        http_fake.client()
    answer = http_fake.api_client().send_in_app({"transactional_message_id": 1, "identifiers": {"id": "u1"}})
    assert answer["delivery_id"]


def test_not_running_is_a_clear_error() -> None:
    fake = FakeCustomerIO(https=False)
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    fake.stop()  # stopping a never-started emulator is harmless


def test_stop_interrupts_stalls_and_idle_connections_and_joins_threads() -> None:
    baseline = threading.active_count()
    fake = FakeCustomerIO(https=True).start()
    ca_bundle = fake.ca_bundle
    assert ca_bundle is not None
    idle = http.client.HTTPSConnection("127.0.0.1", fake.port, context=fake.ssl_context(), timeout=30)
    idle.request("PUT", "/api/v1/customers/u1", body=b"{}", headers=AUTH)
    assert idle.getresponse().read() == b"{}"  # this keep-alive connection now idles in a server thread
    fake.stall_next(1, 60.0)
    errors: list[BaseException] = []

    def stalled_call() -> None:
        try:
            fake.client(timeout=30, retries=0).track("u1", "x")
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=stalled_call)
    caller.start()
    assert fake.wait_for(lambda: any(r.fault == "stall" for r in fake.requests), timeout=5)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    caller.join(5)
    assert not caller.is_alive()
    assert len(errors) == 1  # the stalled call ended with a dropped connection, not a 60 s wait
    assert fake.events == []
    idle.close()
    assert not os.path.exists(ca_bundle)
    assert fake.wait_for(lambda: threading.active_count() <= baseline, timeout=2)


def test_port_is_released_on_stop() -> None:
    with FakeCustomerIO(https=False) as fake:
        port = fake.port
    with FakeCustomerIO(https=False, port=port) as again:  # would fail with EADDRINUSE if leaked
        assert again.port == port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_sink_mode_counts_without_state() -> None:
    entry = {"type": "person", "action": "event", "identifiers": {"id": "u1"}, "name": "x", "id": "E1"}
    body = json.dumps(
        {"batch": [entry] * 100 + [{"type": "person", "action": "identify", "identifiers": {"id": "u1"}}]}
    )
    with FakeCustomerIO(https=False, store=False) as fake:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        for _ in range(5):
            conn.request("POST", "/api/v2/batch", body=body, headers=AUTH)
            assert conn.getresponse().read() == b"{}"
        conn.request("PUT", "/api/v1/customers/u1", body=b"{}", headers=AUTH)
        conn.getresponse().read()
        conn.close()
        stats = fake.stats()
        assert (stats["requests"], stats["operations"], stats["events"]) == (6, 506, 500)
        assert stats["bytes_received"] == 5 * len(body) + 2
        assert (fake.requests, fake.events, fake.people, fake.duplicate_events) == ([], [], {}, 0)


def test_wait_for_is_bounded() -> None:
    with FakeCustomerIO(https=False) as fake:
        started = time.monotonic()
        assert fake.wait_for(lambda: False, timeout=0.1) is False
        assert 0.1 <= time.monotonic() - started < 1
        timer = threading.Timer(
            0.05,
            lambda: fake.api_client().send_in_app(
                {"transactional_message_id": 1, "identifiers": {"id": "u"}}
            ),
        )
        timer.start()
        assert fake.wait_for(lambda: fake.deliveries, timeout=5)
        timer.join()


def test_unsupported_body_framing(http_fake: FakeCustomerIO) -> None:
    with socket.create_connection(("127.0.0.1", http_fake.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 411")


def test_concurrent_clients_are_all_counted() -> None:
    def worker(port: int, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(n):
            conn.request("POST", "/api/v1/customers/u1/events", body=b'{"name": "e%d"}' % i, headers=AUTH)
            assert conn.getresponse().read() == b"{}"
        conn.close()

    with FakeCustomerIO(https=False) as fake:
        workers = [threading.Thread(target=worker, args=(fake.port, 40)) for _ in range(8)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(20)
        stats = fake.stats()
        assert (stats["requests"], stats["events"], stats["connections"]) == (320, 320, 8)
        assert len(fake.events) == 320
        assert len(fake.requests) == 320
