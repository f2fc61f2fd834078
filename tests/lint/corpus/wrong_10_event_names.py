"""Pitfall 10: event names in several conventions."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def signed_up(user_id: str) -> None:
    cio.track(user_id, "UserSignedUp")  # expect: CIO010
    cio.track(user_id, "user-signed-up")  # expect: CIO010
    cio.track(user_id, name="user signed up")  # expect: CIO010
    cio.track_anonymous("anon-1", "Viewed Pricing")  # expect: CIO010
