"""cioguard.track_client() / app_client(): one client per process from CUSTOMERIO_* variables."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import pytest
from customerio import APIClient, CustomerIO, Regions
from prometheus_client import CollectorRegistry

import cioguard


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    cioguard.reset_clients()
    yield
    cioguard.reset_clients()


def test_missing_variables_are_all_named_in_one_error() -> None:
    with pytest.raises(cioguard.ConfigurationError) as raised:
        cioguard.track_client(environ={})
    message = str(raised.value)
    assert "CUSTOMERIO_SITE_ID" in message
    assert "CUSTOMERIO_TRACK_API_KEY" in message
    with pytest.raises(ValueError, match="CUSTOMERIO_APP_API_KEY"):
        cioguard.app_client(environ={"CUSTOMERIO_SITE_ID": "s"})


def test_one_client_per_process_and_reset() -> None:
    environ = {"CUSTOMERIO_SITE_ID": "site", "CUSTOMERIO_TRACK_API_KEY": "key", "CUSTOMERIO_REGION": "eu"}
    first = cioguard.track_client(environ=environ)
    assert isinstance(first, CustomerIO)
    assert first.host == Regions.EU.track_host
    assert cioguard.track_client(environ=environ) is first
    cioguard.reset_clients()
    assert cioguard.track_client(environ=environ) is not first


def test_app_client_and_bad_region() -> None:
    api = cioguard.app_client(environ={"CUSTOMERIO_APP_API_KEY": "k" * 32})
    assert isinstance(api, APIClient)
    cioguard.reset_clients()
    with pytest.raises(cioguard.ConfigurationError, match="'us' or 'eu'"):
        cioguard.app_client(environ={"CUSTOMERIO_APP_API_KEY": "k", "CUSTOMERIO_REGION": "mars"})


def in_a_forked_child(work: Callable[[], bytes]) -> bytes:
    """What ``work()`` returns when run in a child made with ``os.fork()`` (the parent waits)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        os.write(write_end, work())
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 256)
    os.close(read_end)
    os.waitpid(pid, 0)
    return answer


def test_forked_child_builds_its_own_client() -> None:
    environ = {"CUSTOMERIO_SITE_ID": "site", "CUSTOMERIO_TRACK_API_KEY": "key"}
    parent_client = cioguard.track_client(environ=environ)
    answer = in_a_forked_child(
        lambda: b"same" if cioguard.track_client(environ=environ) is parent_client else b"new"
    )
    assert answer == b"new"


def test_a_forked_childs_own_client_is_not_a_second_one() -> None:
    """gunicorn --preload / a fork Pool: the master's cached client is dropped in the child, whose
    first track_client() is its only client: no CIO009 there (it used to count the parent's)."""
    environ = {
        "CUSTOMERIO_SITE_ID": "f82ad78f695bd32f9d99",
        "CUSTOMERIO_TRACK_API_KEY": "a82ad78f695bd32f9d99",
    }

    def child_findings() -> bytes:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cioguard.track_client(environ=environ)
        return ",".join(getattr(w.category, "code", "-") for w in caught).encode() or b"none"

    # Defaults but a dead local endpoint (nothing is sent) and a private registry.
    cioguard.instrument(track_url="http://127.0.0.1:9", registry=CollectorRegistry())
    try:
        cioguard.track_client(environ=environ)  # the preloaded master's client
        assert in_a_forked_child(child_findings) == b"none"
    finally:
        cioguard.uninstrument(timeout=0.5)
