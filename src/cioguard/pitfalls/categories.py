"""Warning categories (one per pitfall code) and the :class:`Finding` a rule returns.

Every category derives from :class:`PitfallWarning` (a ``UserWarning``) and carries its code in
``.code``, so Python's warning filters work at any granularity::

    import warnings
    from cioguard.pitfalls import PitfallWarning, TrackBeforeIdentifyWarning

    warnings.simplefilter("error", PitfallWarning)              # every pitfall fails (CI)
    warnings.simplefilter("ignore", TrackBeforeIdentifyWarning)  # but not CIO003

or on the command line: ``python -W error::cioguard.PitfallWarning app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


class PitfallWarning(UserWarning):
    """Base category of every cioguard pitfall warning."""

    code = "CIO000"


class WrongApiKeyWarning(PitfallWarning):
    """CIO001: a Track key given to the App API (or the reverse), or a 401 answer."""

    code = "CIO001"


class MillisecondTimestampWarning(PitfallWarning):
    """CIO002: a timestamp in milliseconds (or an ISO string) where Unix seconds are required."""

    code = "CIO002"


class TrackBeforeIdentifyWarning(PitfallWarning):
    """CIO003: an event for a person this process never identified."""

    code = "CIO003"


class EmailAsIdWarning(PitfallWarning):
    """CIO004: a customer id shaped like an email address."""

    code = "CIO004"


class MissingEmailWarning(PitfallWarning):
    """CIO005: the first identify of a person carries no ``email``."""

    code = "CIO005"


class DynamicEventNameWarning(PitfallWarning):
    """CIO006: an event name carrying an id, or an exploding number of distinct names."""

    code = "CIO006"


class BlockingCallWarning(PitfallWarning):
    """CIO007: a Customer.io call blocked a web request or a running asyncio event loop."""

    code = "CIO007"


class NoBounceHandlingWarning(PitfallWarning):
    """CIO008: email sent without a bounce webhook receiver, or to a person who bounced."""

    code = "CIO008"


class ClientPerRequestWarning(PitfallWarning):
    """CIO009: SDK clients built per request or repeatedly for the same credentials."""

    code = "CIO009"


class InconsistentEventNameWarning(PitfallWarning):
    """CIO010: an event name that is not snake_case (or a variant of a name already seen)."""

    code = "CIO010"


class RateLimitWarning(PitfallWarning):
    """CIO011: 429 answers, a sustained call rate over the limit, or a nearly full queue."""

    code = "CIO011"


class PiiInEventNameWarning(PitfallWarning):
    """CIO012: an email, phone or card number inside an event name."""

    code = "CIO012"


class EventSchemaWarning(PitfallWarning):
    """CIO013: an event outside the declared taxonomy, or data not matching its fields."""

    code = "CIO013"


class PayloadLimitWarning(PitfallWarning):
    """CIO014: an id, attribute, event name or payload over Customer.io's documented limits."""

    code = "CIO014"


class LegacyCallWarning(PitfallWarning):
    """CIO015: a call in the customerio 1.x/2.x style that 3.x rejects.

    For example ``track(customer_id=..., name=..., **props)``: 3.x takes ``data={...}``.
    """

    code = "CIO015"


#: code → category, for every code CIO001…CIO015.
CATEGORIES: dict[str, type[PitfallWarning]] = {
    cls.code: cls
    for cls in (
        WrongApiKeyWarning,
        MillisecondTimestampWarning,
        TrackBeforeIdentifyWarning,
        EmailAsIdWarning,
        MissingEmailWarning,
        DynamicEventNameWarning,
        BlockingCallWarning,
        NoBounceHandlingWarning,
        ClientPerRequestWarning,
        InconsistentEventNameWarning,
        RateLimitWarning,
        PiiInEventNameWarning,
        EventSchemaWarning,
        PayloadLimitWarning,
        LegacyCallWarning,
    )
}

ALL_CODES: frozenset[str] = frozenset(CATEGORIES)


@dataclass(frozen=True, slots=True)
class Finding:
    """One pitfall found by a rule: its code, a constant message and the variable detail.

    ``message`` starts with the code and says what happened, why it hurts and how to fix it. It is
    the same text every time a rule fires at a call site (no counts, sizes, milliseconds or names), so
    Python's default warning filter shows each finding once per line. ``detail`` carries what varies
    (the masked name, the size, the milliseconds): it goes to the debug log and, through
    :meth:`event_attributes`, to span events, never into the warning text. Neither holds personal data.
    """

    code: str
    message: str
    detail: str = ""

    @property
    def category(self) -> type[PitfallWarning]:
        return CATEGORIES[self.code]

    def warning(self) -> PitfallWarning:
        """The warning instance to ``warnings.warn`` or raise."""
        return CATEGORIES[self.code](self.message)

    def event_attributes(self) -> dict[str, str]:
        """The attributes of the ``customerio.pitfall`` span event."""
        if self.detail:
            return {"customerio.pitfall.code": self.code, "customerio.pitfall.detail": self.detail}
        return {"customerio.pitfall.code": self.code}
