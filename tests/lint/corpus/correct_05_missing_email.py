"""Pitfall 5, correct: email always included (or hidden in **attrs, or a partial _update)."""

from typing import Any

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def register(user_id: str, email: str, attrs: dict[str, Any]) -> None:
    cio.identify(user_id, email=email, first_name="Jane", plan="pro")
    cio.identify(user_id, **attrs)
    cio.identify(user_id, plan="team", _update=True)
