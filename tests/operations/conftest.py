"""Fixtures for the call → operation tests: the real SDK, stopped at its single HTTP funnel.

``RecordingTrack``/``RecordingApp`` are the SDK's own clients with ``send_request`` replaced by a
recorder: every argument check, URL builder and body builder of the SDK runs for real, and the
recorder keeps ``(method, path, body)`` where ``body`` is what ``requests`` would JSON-encode
(``_sanitize(data)``, exactly as ``ClientBase.send_request`` does).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from customerio import APIClient, CustomerIO

from cioguard.operations.build import app_endpoint, track_endpoint
from cioguard.operations.model import Endpoint

Sent = tuple[str, str, Any]


class RecordingTrack(CustomerIO):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("site", "key")
        self.sent: list[Sent] = []

    def send_request(self, method: str, url: str, data: Any) -> None:
        # ``json.dumps(..., allow_nan=False)`` is what requests does with ``json=``.
        body = json.loads(json.dumps(self._sanitize(data), allow_nan=False))
        self.sent.append((method, urlsplit(url).path, body))


class _Response:
    def json(self) -> dict[str, Any]:
        return {"delivery_id": "d1", "queued_at": 0}


class RecordingApp(APIClient):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("app-key")
        self.sent: list[Sent] = []

    def send_request(self, method: str, url: str, data: Any) -> _Response:
        body = json.loads(json.dumps(self._sanitize(data), allow_nan=False))
        self.sent.append((method, urlsplit(url).path, body))
        return _Response()


@pytest.fixture
def sdk() -> RecordingTrack:
    return RecordingTrack()


@pytest.fixture
def sdk_app() -> RecordingApp:
    return RecordingApp()


@pytest.fixture
def endpoint() -> Endpoint:
    return track_endpoint("site", "key", "https://track.customer.io")


@pytest.fixture
def app() -> Endpoint:
    return app_endpoint("app-key", "https://api.customer.io")
