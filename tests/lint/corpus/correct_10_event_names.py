"""Pitfall 10, correct: snake_case everywhere."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")
SIGNED_UP = "user_signed_up"


def signed_up(user_id: str) -> None:
    cio.track(user_id, "user_signed_up")
    cio.track(user_id, SIGNED_UP)
    cio.track_anonymous("anon-1", "pricing_viewed")
