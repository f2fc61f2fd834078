"""Options for :func:`cioguard.instrument`, from keyword arguments and ``CIOGUARD_*`` variables.

Every option can be given as a keyword argument or as an environment variable named
``CIOGUARD_<OPTION IN UPPER CASE>`` (``CIOGUARD_MODE=blocking``, ``CIOGUARD_MAX_QUEUE_SIZE=50000``,
``CIOGUARD_DISABLED_PITFALLS=CIO003,CIO005``). Keyword arguments win over the environment. A bad value
raises :class:`ValueError` naming the option (or variable) and the values it accepts, at the line that
called ``instrument()``.

The table in the README lists every option with its default; :data:`OPTION_SPECS` is the source.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypedDict

MODES = ("background", "blocking")
OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")
PITFALL_MODES = ("warn", "error", "off")
SPOOL_SYNC_MODES = ("always", "group")
QUEUE_FALLBACKS = ("local", "drop")
PITFALL_CODES = tuple(f"CIO{n:03d}" for n in range(1, 16))

Mode = Literal["background", "blocking"]
Overflow = Literal["drop_newest", "drop_oldest", "block"]
PitfallMode = Literal["warn", "error", "off"]
SpoolSync = Literal["always", "group"]
MetricsBackend = Literal["prometheus", "otel", "both", "none"]
METRICS_BACKENDS = ("prometheus", "otel", "both", "none")

QueueFallback = Literal["local", "drop"]

#: Customer.io rejects batch requests of 500 KB or more; stay well below with the envelope.
MAX_BATCH_BYTES_LIMIT = 499_000


@dataclass(frozen=True)
class Options:
    """The validated configuration of one ``instrument()`` call."""

    mode: Mode = "background"
    max_queue_size: int = 10_000
    overflow: Overflow = "drop_newest"
    flush_interval: float = 1.0
    max_batch_bytes: int = 450_000
    #: Seconds an operation may keep being retried before it is dropped as ``expired``.
    delivery_timeout: float = 600.0
    #: Optional extra bound on attempts; None = unbounded within ``delivery_timeout``.
    max_retries: int | None = None
    rate_limit: float = 100.0
    spool_path: str | None = None
    spool_sync: SpoolSync = "group"
    #: Spooled operations older than this are dropped as ``expired`` (7 days).
    spool_max_age: float = 7 * 24 * 3600.0
    track_url: str | None = None
    api_url: str | None = None
    queue_url: str | None = None
    queue_partitions: int = 8
    queue_fallback: str = "local"
    pitfalls: PitfallMode = "warn"
    disabled_pitfalls: frozenset[str] = frozenset()
    fix_timestamps: bool = False
    track_before_identify: bool = True
    capture_customer_id: bool = False
    background_transactional: bool = False
    exit_timeout: float = 5.0
    request_timeout: float = 10.0
    tracer_provider: Any = field(default=None, compare=False)
    meter_provider: Any = field(default=None, compare=False)
    registry: Any = field(default=None, compare=False)
    #: Where metrics go: prometheus | otel | both | none. None = chosen so nothing doubles.
    metrics: MetricsBackend | None = None
    #: Per-call PRODUCER spans (the send spans stay).
    producer_spans: bool = True
    #: Called with (reason, count, methods) for every drop; never with payloads.
    on_drop: Any = field(default=None, compare=False)


class InstrumentOptions(TypedDict, total=False):
    """The keyword options of :func:`cioguard.instrument`, typed for IDEs and mypy.

    Each is documented in the README's configuration table; each (but the objects) can also be set
    as ``CIOGUARD_<NAME>``. Kept equal to :data:`OPTION_SPECS` by a test."""

    mode: Mode
    max_queue_size: int
    overflow: Overflow
    flush_interval: float
    max_batch_bytes: int
    delivery_timeout: float
    max_retries: int | None
    rate_limit: float
    spool_path: str | os.PathLike[str] | None
    spool_sync: SpoolSync
    spool_max_age: float
    track_url: str | None
    api_url: str | None
    queue_url: str | None
    queue_partitions: int
    queue_fallback: QueueFallback
    pitfalls: PitfallMode
    disabled_pitfalls: str | Iterable[str]
    fix_timestamps: bool
    track_before_identify: bool
    capture_customer_id: bool
    background_transactional: bool
    exit_timeout: float
    request_timeout: float
    tracer_provider: Any
    meter_provider: Any
    registry: Any
    metrics: MetricsBackend | None
    producer_spans: bool
    on_drop: Callable[..., object] | None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false, 1/0, yes/no, on/off")


def _parse_codes(value: Any) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    codes = frozenset(str(item).strip().upper() for item in items if str(item).strip())
    unknown = sorted(codes - set(PITFALL_CODES))
    if unknown:
        raise ValueError(f"unknown pitfall code(s) {', '.join(unknown)}; known codes are CIO001…CIO015")
    return codes


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _number(kind: type, *, minimum: float, maximum: float = math.inf) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")  # int() would truncate it
        upper = "" if maximum == math.inf else f" and at most {maximum:g}"
        accepted = f"{'a whole number' if kind is int else 'a number'} of at least {minimum:g}{upper}"
        try:
            number = kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):  # "1s", "", "10k": say what is accepted, not int()'s words
            raise ValueError(f"expected {accepted} (no unit), got {value!r}") from None
        if not (minimum <= number <= maximum) or (isinstance(number, float) and math.isnan(number)):
            raise ValueError(f"expected {accepted}, got {value!r}")
        return number

    return parse


def _optional_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL such as https://127.0.0.1:8765")
    return text


def _optional_redis_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0")
    return text


#: Values of a path option that mean "off" (``CIOGUARD_SPOOL_PATH=false`` must not create a file
#: named "false" holding API credentials).
_OFF_WORDS = frozenset({"", "0", "false", "no", "off", "none"})


def _optional_path(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS):
        return None
    return os.fsdecode(os.fspath(value))  # (a bytes path too)


def _flag(value: Any) -> bool:
    return _parse_bool(value) if isinstance(value, str) else bool(value)


def _passthrough(value: Any) -> Any:
    return value


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return parse(value)

    return parse_optional


def _callback(value: Any) -> Any:
    if value is None:
        return None
    if not callable(value):
        raise ValueError("expected a callable(reason, count, methods) or None")
    try:
        signature = inspect.signature(value)
    except ValueError:  # no signature to read (some builtins): it will be tried
        return value
    try:
        signature.bind("queue_full", 1, {})
    except TypeError:
        raise ValueError(
            "expected a callable taking (reason, count, methods): it is told of every drop that way"
        ) from None
    return value


#: option name -> parser (raises ValueError with the accepted values). Objects such as providers
#: and registries cannot come from the environment.
OPTION_SPECS: dict[str, Callable[[Any], Any]] = {
    "mode": _choice(MODES),
    "max_queue_size": _number(int, minimum=1),
    "overflow": _choice(OVERFLOW_POLICIES),
    "flush_interval": _number(float, minimum=0.01, maximum=3600),
    "max_batch_bytes": _number(int, minimum=1_000, maximum=MAX_BATCH_BYTES_LIMIT),
    "delivery_timeout": _number(float, minimum=1, maximum=30 * 24 * 3600),
    "max_retries": _optional(_number(int, minimum=0, maximum=1000)),
    "rate_limit": _number(float, minimum=0.1),
    "spool_path": _optional_path,
    "spool_sync": _choice(SPOOL_SYNC_MODES),
    "spool_max_age": _number(float, minimum=60, maximum=365 * 24 * 3600),
    "track_url": _optional_url,
    "api_url": _optional_url,
    "queue_url": _optional_redis_url,
    "queue_partitions": _number(int, minimum=1, maximum=4096),
    "queue_fallback": _choice(QUEUE_FALLBACKS),
    "pitfalls": _choice(PITFALL_MODES),
    "disabled_pitfalls": _parse_codes,
    "fix_timestamps": _flag,
    "track_before_identify": _flag,
    "capture_customer_id": _flag,
    "background_transactional": _flag,
    "exit_timeout": _number(float, minimum=0, maximum=3600),
    "request_timeout": _number(float, minimum=0.1, maximum=600),
    "tracer_provider": _passthrough,
    "meter_provider": _passthrough,
    "registry": _passthrough,
    # Not _optional: "none" is a backend choice here (record nothing), only None/"" mean auto.
    "metrics": lambda value: None if value in (None, "") else _choice(METRICS_BACKENDS)(value),
    "producer_spans": _flag,
    "on_drop": _callback,
}
#: Options that take Python objects: keywords only, never from the environment.
OBJECT_OPTIONS = frozenset({"tracer_provider", "meter_provider", "registry", "on_drop"})
ENV_PREFIX = "CIOGUARD_"


def env_name(option: str) -> str:
    """The environment variable that sets ``option``."""
    return ENV_PREFIX + option.upper()


logger = logging.getLogger("cioguard")
_reported_variables: set[str] = set()
_reported_lock = threading.Lock()


def _closest(name: str, candidates: list[str]) -> str:
    """`` (did you mean X?)`` followed by a period-free end, or ``.`` when nothing is close."""
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)." if match else "."


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``CIOGUARD_*`` variables that set no option, each with a hint (closest valid name)."""
    options = [o for o in OPTION_SPECS if o not in OBJECT_OPTIONS]
    settable = [env_name(o) for o in options]
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in settable:
            continue
        option = name[len(ENV_PREFIX) :].lower()
        if option in OBJECT_OPTIONS:
            found.append(f"{name} is ignored: {option} is an object; pass instrument({option}=...)")
        else:
            # Compare without the shared prefix, or every name would look close to CIOGUARD_MODE.
            match = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
            hint = f" (did you mean {env_name(match[0])}?)" if match else ""
            found.append(f"{name} is not a cioguard option and is ignored{hint}")
    return found


def _report_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log each unknown ``CIOGUARD_*`` variable once per process: a typo must not pass silently."""
    for message in unknown_variables(environ):
        with _reported_lock:
            if message in _reported_variables:
                continue
            _reported_variables.add(message)
        logger.warning("cioguard: environment variable %s", message)


def load_options(kwargs: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Options:
    """Validate ``kwargs`` merged over ``CIOGUARD_*`` variables into :class:`Options`."""
    environ = os.environ if environ is None else environ
    unknown = sorted(set(kwargs) - set(OPTION_SPECS))
    if unknown:
        hint = _closest(unknown[0], list(OPTION_SPECS))
        raise TypeError(
            f"instrument() got unknown option(s) {', '.join(unknown)}{hint} "
            f"Valid options are {', '.join(OPTION_SPECS)}."
        )
    _report_unknown_variables(environ)
    values: dict[str, Any] = {}
    for option, parse in OPTION_SPECS.items():
        if option in kwargs:
            source, raw = f"option {option}", kwargs[option]
        elif option not in OBJECT_OPTIONS and env_name(option) in environ:
            source, raw = f"environment variable {env_name(option)}", environ[env_name(option)]
        else:
            continue
        try:
            values[option] = parse(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cioguard: invalid {source}={raw!r}: {exc}") from None
    return Options(**values)


def option_defaults() -> dict[str, Any]:
    """Every option with its default (for docs and ``cioguard.stats()``)."""
    return {f.name: getattr(Options(), f.name) for f in fields(Options)}
