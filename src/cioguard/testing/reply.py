"""Reply and handler context types shared by the emulator's v1, v2 and App API handlers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cioguard.testing.state import Store


@dataclass
class Reply:
    """An HTTP answer: status, JSON payload (``None`` = empty body) and extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """What a handler may touch: the store (``None`` in sink mode), counters and clocks."""

    store: Store | None
    counts: Counter[str]
    now: float
    wall_time: float
    base_url: str


def v1_error(status: int, message: str) -> Reply:
    return Reply(status, {"meta": {"errors": [message]}})


def meta_error(status: int, message: str) -> Reply:
    return Reply(status, {"meta": {"error": message}})
