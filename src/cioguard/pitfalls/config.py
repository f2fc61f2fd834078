"""What a :class:`~cioguard.pitfalls.PitfallEngine` checks and how it reports (``instrument()`` options)::

config = PitfallConfig.from_options(options)      # or PitfallConfig(mode="error")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PitfallConfig", "PitfallMode"]

PitfallMode = Literal["warn", "error", "off"]


@dataclass(frozen=True)
class PitfallConfig:
    """What the engine checks and how it reports (from ``instrument()`` options)."""

    #: ``"warn"``, ``"error"`` or ``"off"`` (a :data:`PitfallMode`; validated by the engine).
    mode: str = "warn"
    disabled: frozenset[str] = frozenset()
    #: Convert millisecond timestamps to seconds in the call that is sent (CIO002 still fires).
    fix_timestamps: bool = False
    #: CIO003; turn off for services that only track people identified elsewhere.
    track_before_identify: bool = True
    #: CIO006 fires once when more distinct event names than this are seen.
    max_event_names: int = 500
    #: Calls per second (blocking mode) above which CIO011 fires when sustained for 3 s.
    rate_limit: float = 100.0
    #: CIO011 fires when the queue stays above 80 % of capacity this long.
    queue_sustain_seconds: float = 10.0
    #: CIO007 ignores blocking calls shorter than this.
    blocking_threshold_seconds: float = 0.0
    #: Measure event data size (CIO014) in check_call. An instrumentation that serialises the data
    #: anyway may turn this off and report sizes with :meth:`PitfallEngine.check_data_size` (saves
    #: one orjson encoding per event).
    measure_event_data: bool = True

    @classmethod
    def from_options(cls, options: Any) -> PitfallConfig:
        """From a :class:`cioguard.config.Options` (read by attribute name)."""
        return cls(
            mode=getattr(options, "pitfalls", "warn"),
            disabled=frozenset(getattr(options, "disabled_pitfalls", frozenset())),
            fix_timestamps=bool(getattr(options, "fix_timestamps", False)),
            track_before_identify=bool(getattr(options, "track_before_identify", True)),
            rate_limit=float(getattr(options, "rate_limit", 100.0)),
        )
