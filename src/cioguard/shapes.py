"""Shape detectors and masking shared by the pitfall rules and ``cioguard lint`` (pure, no state).

It imports nothing but ``re``, so the static checker uses the very tests the runtime rules use.

``looks_like_email``, ``find_pii`` and ``id_like_tokens`` recognise personal data and ids inside
strings; ``safe_name`` turns an event or attribute name into something safe to print in a warning:
emails, phone numbers, card numbers and id-like tokens are replaced by placeholders, so a warning
message never carries personal data.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_EMAIL_FULL = re.compile(r"\s*" + _EMAIL.pattern + r"\s*")
# A run of digits with the separators people type in phone and card numbers.
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{7,}\d")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
#: An ISO-8601 date or date-time (CIO002: a timestamp sent as text), for ``fullmatch``.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def looks_like_email(value: str) -> bool:
    """True when the whole value is shaped like an email address."""
    return "@" in value and _EMAIL_FULL.fullmatch(value) is not None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by payment card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _classify_digit_run(run: str) -> str | None:
    digits = "".join(ch for ch in run if ch.isdigit())
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "card number"
    # Phone numbers: E.164 allows up to 15 digits; national numbers have at least 10 (with area code).
    if 10 <= len(digits) <= 15 and (run.startswith("+") or any(ch in run for ch in " ()-.")):
        return "phone number"
    if run.startswith("+") and 8 <= len(digits) <= 15:
        return "phone number"
    return None


def find_pii(text: str) -> list[str]:
    """Kinds of personal data found in ``text``: ``email address``, ``phone number``, ``card number``."""
    kinds: list[str] = []
    text = _UUID.sub(" ", text)  # UUID digit groups are not phone numbers
    if "@" in text and _EMAIL.search(text):
        kinds.append("email address")
    for match in _DIGIT_RUN.finditer(text):
        kind = _classify_digit_run(match.group())
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    # A bare run of 13-19 digits without separators (a card number glued into a name).
    for match in re.finditer(r"\d{13,19}", text):
        if luhn_valid(match.group()) and "card number" not in kinds:
            kinds.append("card number")
    return kinds


def _token_is_id_like(token: str) -> bool:
    digits = sum(ch.isdigit() for ch in token)
    if not digits:
        return False
    if digits == len(token):
        # 4+ digit numbers are ids; short ones (v2 steps, top_10) and years (sale_2024) are stable.
        return digits >= 4 and not (digits == 4 and token[:2] in ("19", "20"))
    if len(token) >= 8 and _HEX.fullmatch(token) is not None:
        return True  # hashes, object ids
    # Codes mixing letters and several digits (sku1234, a1b2c3); ``v2``, ``oauth2``, ``x86`` pass.
    return len(token) >= 5 and digits >= 3


def id_like_tokens(name: str) -> list[str]:
    """The parts of ``name`` that look like ids: UUIDs, 4+ digit numbers, long hex, SKU-like codes."""
    found = [m.group() for m in _UUID.finditer(name)]
    rest = _UUID.sub(" ", name)
    found.extend(token for token in _TOKEN_SPLIT.split(rest) if token and _token_is_id_like(token))
    return found


def is_snake_case(name: str) -> bool:
    return _SNAKE.fullmatch(name) is not None


def canonical_name(name: str) -> str:
    """The snake_case form name variants share: ``UserSignedUp``, ``user-signed-up`` → ``user_signed_up``."""
    spaced = _CAMEL.sub("_", name.strip())
    return "_".join(part.lower() for part in _TOKEN_SPLIT.split(spaced) if part)


def safe_name(name: object, limit: int = 60) -> str:
    """``name`` with personal data and ids replaced by placeholders, shortened, quoted for a message."""
    text = name if isinstance(name, str) else f"<{type(name).__name__}>"
    text = _EMAIL.sub("<email>", text)
    text = _UUID.sub("{id}", text)
    text = _DIGIT_RUN.sub(lambda m: "<number>" if _classify_digit_run(m.group()) else m.group(), text)
    parts = re.split(r"([^A-Za-z0-9{}<>]+)", text)
    text = "".join("{id}" if _token_is_id_like(part) else part for part in parts)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding short strings (each char is at most 4 bytes)."""
    if len(text) * 4 <= 100 or text.isascii():
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-8", "surrogatepass"))
