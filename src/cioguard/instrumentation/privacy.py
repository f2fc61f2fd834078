"""The SDK's exceptions without personal data, unless ``capture_customer_id=True``.

::

    from cioguard.instrumentation.privacy import scrub_sdk_exception

    try:
        response = send(...)
    except CustomerIOException as exc:
        scrub_sdk_exception(exc, url)      # same object, type and traceback; a safe message
        raise

The SDK formats a failed request as ``"<status>: <url> <payload> <response body>"`` and a transport
failure with the exception that caused it (whose text holds the URL): customer ids, emails and
event data end up in logs and error trackers (Sentry reports the chained cause too). cioguard keeps
the status, the route template and the cause's type, withholds the rest and says how to get it back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cioguard.delivery.spans import url_template

_HINT = "withheld by cioguard: they may hold personal data; instrument(capture_customer_id=True) keeps them"


def safe_request_text(status: int | None, url: str, exc: BaseException) -> str:
    """The message of a failed SDK request without ids, payload or response body."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{url_template(parts.path)}"
    if status is not None:
        return f"{status}: {where} (ids, payload and response body {_HINT})"
    first = str(exc).split("\n", 1)[0]  # "Failed to receive valid response after N retries."
    cause = exc.__cause__
    kind = "" if cause is None else f" Last caught exception -- {type(cause).__name__}."
    return f"{first} {where}{kind} (details {_HINT})"


def scrub_sdk_exception(exc: BaseException, url: str, status: int | None) -> None:
    """Replace ``exc``'s message in place and cut its chained cause and context (whose text holds
    the URL: a tool that ignores ``__suppress_context__`` would show it)."""
    exc.args = (safe_request_text(status, url, exc),)
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
