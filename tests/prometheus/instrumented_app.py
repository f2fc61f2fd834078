"""A small Starlette app instrumented with cioguard, run as a real uvicorn server by the tests.

    python tests/prometheus/instrumented_app.py --port 8000 --cio-url https://127.0.0.1:8443
    # several workers, prometheus_client multiprocess mode (wipe the directory first):
    PROMETHEUS_MULTIPROC_DIR=/tmp/prom CIO_URL=https://127.0.0.1:8443 \
        python -m uvicorn --factory instrumented_app:create_app --workers 2 --port 8000

Environment: ``REQUESTS_CA_BUNDLE`` trusts the emulator's CA; ``WEBHOOK_SIGNING_KEY`` is the
reporting-webhook key; ``CIO_URL`` and ``MAX_QUEUE_SIZE`` configure :func:`create_app`. Routes:

- ``GET /work?n=N``: N identify + track calls (background mode: queued, delivered by the sender);
- ``GET /blocking``: one call inside ``cioguard.synchronous()`` (blocks the request: CIO007);
- ``GET /pitfall``: an email used as a customer id (CIO004);
- ``POST /flush``: ``cioguard.flush()``, answers ``cioguard.stats()``;
- ``/webhooks/``: the reporting-webhook receiver; ``/metrics``: :func:`cioguard.metrics.make_asgi_app`.
"""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any
from urllib.parse import urlsplit

import customerio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import cioguard
from cioguard.asgi import CioGuardMiddleware
from cioguard.metrics import make_asgi_app
from cioguard.webhooks import WebhookReceiver


def build(cio_url: str, max_queue_size: int) -> Any:
    # Defaults (retries included: each injected fault is retried as a user's would be) but two
    # explicit options: the queue size, whose gauge the test checks (customerio_queue_capacity),
    # and a 0.1 s flush interval, so a worker that did not serve /flush still delivers between two
    # of Prometheus's 1 s scrapes (rate() must see the growth).
    cioguard.instrument(track_url=cio_url, api_url=cio_url, flush_interval=0.1, max_queue_size=max_queue_size)
    parts = urlsplit(cio_url)
    client = customerio.CustomerIO(
        site_id="site-id", api_key="track-key", host=parts.hostname, port=parts.port
    )
    receiver = WebhookReceiver(os.environ["WEBHOOK_SIGNING_KEY"], on_bounce="none")

    def work(request: Request) -> JSONResponse:
        n = min(int(request.query_params.get("n", "1")), 1000)
        for i in range(n):
            client.identify(f"user-{i}", email=f"user{i}@example.com")
            client.track(f"user-{i}", "order_completed", {"total": i})
        return JSONResponse({"calls": 2 * n})

    def blocking(request: Request) -> JSONResponse:
        with cioguard.synchronous():
            client.track("user-0", "password_reset")
        return JSONResponse({"ok": True})

    def pitfall(request: Request) -> JSONResponse:
        client.identify("someone@example.com", email="someone@example.com")
        return JSONResponse({"ok": True})

    def flush(request: Request) -> JSONResponse:
        return JSONResponse({"flushed": cioguard.flush(timeout=15), "stats": cioguard.stats()})

    app = Starlette(
        routes=[
            Route("/work", work),
            Route("/blocking", blocking),
            Route("/pitfall", pitfall),
            Route("/flush", flush, methods=["POST"]),
            Mount("/webhooks", receiver.asgi_app()),
        ]
    )
    # The middleware serves /metrics with cioguard.metrics.make_asgi_app() (passed explicitly here).
    return CioGuardMiddleware(app, metrics_path="/metrics", metrics_app=make_asgi_app())


def create_app() -> Any:
    """The app for ``uvicorn --factory`` (one per worker process), configured from the environment."""
    return build(os.environ["CIO_URL"], int(os.environ.get("MAX_QUEUE_SIZE", "5000")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cio-url", required=True)
    parser.add_argument("--max-queue-size", type=int, default=5000)
    args = parser.parse_args()
    warnings.simplefilter("default")  # pitfall warnings go to stderr; they are counted either way
    uvicorn.run(
        build(args.cio_url, args.max_queue_size), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
