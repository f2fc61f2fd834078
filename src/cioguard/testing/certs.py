"""A throw-away certificate authority for the emulator's HTTPS mode (needs ``trustme``).

:class:`TestCertificates` makes a CA and a server certificate for ``127.0.0.1``/``localhost``,
writes the CA bundle to a temporary directory (``ca_bundle``) and gives a server-side
``ssl.SSLContext``; :meth:`TestCertificates.client_context` gives a client context trusting the CA.
Call :meth:`close` to remove the files.

:func:`make_trusting` makes an SDK client (``CustomerIO``/``APIClient``) trust a CA bundle;
:func:`ca_environment` points ``REQUESTS_CA_BUNDLE`` at it for code that builds its own clients.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TestCertificates:
    """CA + server certificate; ``ca_bundle`` is the PEM path clients should trust."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("HTTPS mode needs trustme: pip install 'cioguard[testing]'") from exc
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self._dir = Path(tempfile.mkdtemp(prefix="cioguard-fake-cio-"))
        self.ca_bundle = str(self._dir / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def make_trusting(sdk_client: Any, bundle: str) -> Any:
    """Make a ``customerio`` client's sessions verify against ``bundle``; returns the client."""
    build = sdk_client._build_session  # also used per request when connection pooling is off

    def build_trusting() -> Any:
        session = build()
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (often set system-wide) would override `verify`, and
        # proxy variables must not divert loopback traffic: this session ignores the environment.
        session.trust_env = False
        session.verify = bundle
        return session

    sdk_client._build_session = build_trusting
    return sdk_client


@contextlib.contextmanager
def ca_environment(bundle: str | None) -> Iterator[None]:
    """Set ``REQUESTS_CA_BUNDLE`` to ``bundle`` (no-op for ``None``) and restore it on exit."""
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    if bundle is not None:
        os.environ["REQUESTS_CA_BUNDLE"] = bundle
    try:
        yield
    finally:
        if bundle is not None:
            if old is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = old
