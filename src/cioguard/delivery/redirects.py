"""What the sender does with a 3xx answer, and what it says of a 207 it cannot read and of a long
``Retry-After``::

    redirects = Redirects()
    response, error, cause, why = redirects.follow(response, url, resend)   # resend(target_url)
    redirects.unreadable_partial(name, count, now)       # a 207 without a usable errors list
    redirects.long_wait(name, status, seconds, now)      # Retry-After of a minute or more

A redirect is followed once, only where the credentials may go
(:func:`cioguard.delivery.wire.redirect_target`), and logged once per destination with the fix;
otherwise ``why`` says why it was not, for the drop log. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from cioguard.delivery.counters import logger
from cioguard.delivery.transport import TransportResponse
from cioguard.delivery.wire import REDIRECTS, redirect_target

#: A ``Retry-After`` at least this long is logged (once a minute).
LONG_WAIT = 60.0
#: One HTTP exchange: (response or None, error kind or None, cause).
Exchange = tuple[TransportResponse | None, str | None, str]


class Redirects:
    def __init__(self) -> None:
        self._logged: set[str] = set()  # destinations of followed redirects (logged once each)
        self._last_unreadable = float("-inf")
        self._last_long_wait = float("-inf")

    def follow(
        self, response: TransportResponse, url: str, resend: Callable[[str], Exchange]
    ) -> tuple[TransportResponse | None, str | None, str, str]:
        """The exchange that stands for ``response`` (a 3xx), and why it is a rejection ("" if not)."""
        location = response.headers.get("location")
        target = redirect_target(url, response.status, location)
        moved = urlsplit(urljoin(url, location or "")).netloc or "?"
        if target is None:
            why = (
                f"HTTP {response.status} redirect to {moved}, not followed: only the same request to the"
                " same path of another *.customer.io host (or https on the same host) is; check track_url"
                " and the client's region"
            )
            return response, None, "", why
        if moved not in self._logged:
            self._logged.add(moved)
            logger.warning(
                "cioguard: %s answered %s, a redirect to %s: followed (and every later one). If that is"
                " your workspace's region, build the client with region=Regions.EU (or set track_url)"
                " to save a round trip per request.",
                urlsplit(url).netloc,
                response.status,
                moved,
            )
        again, error, cause = resend(target)
        if again is not None and again.status in REDIRECTS:  # one redirect, never a chain
            return again, error, cause, f"HTTP {again.status}: redirected again by {moved}, not followed"
        return again, error, cause, ""

    def unreadable_partial(self, name: str, count: int, now: float) -> None:
        """A 207 (some entries rejected) without a readable ``errors`` list: which entries failed is
        unknown, so they count as delivered; say so (once a minute), never silently."""
        if now - self._last_unreadable < 60.0:
            return
        self._last_unreadable = now
        logger.warning(
            "cioguard: %s answered 207 (some entries rejected) without a readable errors list: the %d"
            " operation(s) of that request count as delivered, though some may not have been",
            name,
            count,
        )

    def long_wait(self, name: str, status: int | None, seconds: float, now: float) -> None:
        """A ``Retry-After`` of :data:`LONG_WAIT` seconds or more: nothing is sent to those people
        (a 429: to that workspace) meanwhile; say so (once a minute), never silently."""
        if seconds < LONG_WAIT or now - self._last_long_wait < 60.0:
            return
        self._last_long_wait = now
        logger.warning(
            "cioguard: %s answered %s with Retry-After %.0f s: the operations concerned wait up to that"
            " long before the next try (at most 5 minutes, and a failed batch's wait ends before its"
            " operations would expire)",
            name,
            status,
            seconds,
        )
