"""What the sender puts on and reads off the wire: request bodies, metric names, error bodies.

::

    from cioguard.delivery.wire import endpoint_name, join_v2, PartialFailure

    endpoint_name("POST", "/api/v2/batch")          # "v2_batch" (never a raw path: paths hold ids)
    join_v2([b'{"a":1}'])                            # b'{"batch":[{"a":1}]}'
    PartialFailure(body, count).rejected            # {batch_index: (reason, field)} of a 207/2xx body
    redirect_target(url, location)                  # where a 3xx may be followed, or None

Pure functions; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from urllib.parse import urljoin, urlsplit

import orjson

from cioguard.operations.model import Operation

_method = attrgetter("method")
_APP_SENDS = frozenset({"email", "push", "sms", "whatsapp", "inbox_message", "in_app"})
_CUSTOMER_SUFFIX = {
    ("POST", "events"): "v1_track",
    ("PUT", "devices"): "v1_add_device",
    ("POST", "suppress"): "v1_suppress",
    ("POST", "unsuppress"): "v1_unsuppress",
}
_SEGMENT = re.compile(r"^/api/v1/customers/[^/]+(?:/(?P<rest>[^/]+)(?P<more>/.+)?)?$")


def endpoint_name(http_method: str, path: str) -> str:
    """A bounded metric label for a request path: ``v2_batch``, ``v1_track`` … or ``other``.

    Never returns the raw path (it holds customer ids)."""
    path = path.split("?", 1)[0]
    if path == "/api/v2/batch":
        return "v2_batch"
    if path == "/api/v2/entity":
        return "v2_entity"
    if path == "/api/v1/events":
        return "v1_track_anonymous"
    if path == "/api/v1/merge_customers":
        return "v1_merge_customers"
    if path.startswith("/v1/send/"):
        kind = path[len("/v1/send/") :]
        return f"app_send_{kind}" if kind in _APP_SENDS else "app_other"
    match = _SEGMENT.match(path)
    if match is None:
        return "other"
    rest, more = match.group("rest"), match.group("more")
    if rest is None:
        return {"PUT": "v1_identify", "DELETE": "v1_delete"}.get(http_method, "other")
    if rest == "devices" and more and http_method == "DELETE":
        return "v1_delete_device"
    if more:
        return "other"
    return _CUSTOMER_SUFFIX.get((http_method, rest), "other")


def join_v2(bodies: Sequence[bytes]) -> bytes:
    """The ``/api/v2/batch`` request body for already-encoded entries."""
    return b'{"batch":[' + b",".join(bodies) + b"]}"


class PartialFailure:
    """The entries a 2xx response (207, or a 200 carrying ``errors``) rejected: index → (reason,
    field). Entries without a valid ``batch_index`` are ignored. Parsing never raises."""

    def __init__(self, body: bytes, count: int) -> None:
        self.rejected: dict[int, tuple[str, str]] = {}
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = {}
        errors = data.get("errors") if isinstance(data, dict) else None
        for error in errors if isinstance(errors, list) else ():
            if not isinstance(error, dict):
                continue
            index = error.get("batch_index")
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
                self.rejected[index] = (str(error.get("reason", ""))[:80], str(error.get("field", ""))[:80])


def group_methods(ops: Sequence[Operation]) -> dict[str, int]:
    """Count operations per SDK method name (for per-method counters)."""
    names = list(map(_method, ops))
    if not names:
        return {}
    first = names[0]
    if names.count(first) == len(names):  # the usual batch: one method (a C-level identity scan)
        return {first: len(names)}
    return dict(Counter(names))  # C-level counting: a batch holds up to 2 000


#: Redirects that keep the method and body (or, for 301/302, whose POST every client resends as such
#: to an API): 303 means "now GET that", never followed.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_FOLLOWED = frozenset({301, 302, 307, 308})
#: What a followed Location may hold: printable ASCII without backslashes or spaces.
_PLAIN_URL = re.compile(r"[!-\[\]-~]+")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def redirect_target(url: str, status: int, location: str | None) -> str | None:
    """The URL a redirect of ``url`` may be followed to, or None.

    Only the same request to the same path, and only where the credentials may go: from one
    ``*.customer.io`` host to another over https (Customer.io redirects a US Track URL of an EU
    workspace to the EU host; ``requests`` would drop the Authorization header there and get a
    401), or from http to https on the same host's default ports. A redirect to another path (a
    web site's home page answering 200) or another port is never followed.
    """
    if status not in _FOLLOWED or not location:
        return None
    location = location.strip()
    if not _PLAIN_URL.fullmatch(location):  # a backslash, spaces, controls: parsers disagree on them
        return None
    target = urljoin(url, location)
    old, new = urlsplit(url), urlsplit(target)
    if new.path != old.path or new.scheme != "https" or not new.hostname or "@" in new.netloc:
        return None
    if not _HOST.fullmatch(new.hostname):
        return None
    try:
        old_port, new_port = old.port, new.port
    except ValueError:  # a malformed port
        return None
    if (old.hostname or "").endswith(".customer.io") and new.hostname.endswith(".customer.io"):
        return target if new_port in (None, 443) else None
    upgrade = old.scheme == "http" and old_port in (None, 80) and new_port in (None, 443)
    return target if upgrade and new.hostname == old.hostname else None
