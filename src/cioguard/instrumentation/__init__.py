"""Auto-instrumentation of the ``customerio`` SDK.

Usage
-----

.. code-block:: python

    import cioguard
    cioguard.instrument()                       # or CustomerIOInstrumentor().instrument()

    from customerio import CustomerIO
    cio = CustomerIO(site_id, api_key)
    cio.identify("user-1", email="ada@example.com")   # validated, queued, returns None at once
    cio.track("user-1", "signed_up", data={"plan": "pro"})

With no code: ``pip install cioguard`` and run ``opentelemetry-instrument python app.py``; the
``opentelemetry_instrumentor`` entry point ``customerio`` loads :class:`CustomerIOInstrumentor`, which
reads its options from ``CIOGUARD_*`` variables.

What gets patched (class level, so clients built before ``instrument()`` are covered): every Track
method of ``CustomerIO``, every ``APIClient.send_*``, both constructors (pitfall checks on keys and
client churn) and ``ClientBase.send_request`` (status codes, 429s and durations of real HTTP
exchanges, and ``track_url``/``api_url`` routing in blocking mode).

Modes
-----

- ``background`` (default): Track calls return ``None`` at once; a sender thread batches them into
  ``/api/v2/batch`` requests. ``with cioguard.synchronous(): ...`` forces real synchronous calls.
- ``blocking``: calls stay synchronous and only gain spans, metrics and pitfall warnings.

App API sends (``send_email`` …) stay synchronous (callers read ``delivery_id``) unless
``background_transactional=True``.

Spans
-----

A caller span per call (``PRODUCER`` in background mode, made on the sender from the context and
start time captured at the call; ``CLIENT`` in blocking mode) named ``customerio <method>``; pitfalls
are span events. The sender's ``CLIENT`` span per HTTP request (``POST /api/v2/batch``, semantic
conventions) links to the caller spans of the operations it carries. Customer ids are recorded only
with ``capture_customer_id=True``; ``producer_spans=False`` drops the PRODUCER spans. Inside
``suppress_instrumentation()`` no spans are made. The README's "Traces" section lists every attribute.

API
---
"""

from cioguard.sdk_check import require_sdk

require_sdk()  # before anything imports from `customerio`: a clear error for a replaced package

from cioguard.instrumentation.instrumentor import CustomerIOInstrumentor  # noqa: E402

__all__ = ["CustomerIOInstrumentor"]
