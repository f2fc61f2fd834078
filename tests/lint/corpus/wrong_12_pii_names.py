"""Pitfall 12: personal data inside the event name."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def sent(user_id: str, email: str, phone_number: str) -> None:
    cio.track(user_id, f"email_sent_to_{email}")  # expect: CIO012
    cio.track(user_id, "sms_to_" + phone_number)  # expect: CIO012
    cio.track(user_id, "sent_to_jane@example.com")  # expect: CIO012


def unsubscribed(user_id: str) -> None:
    cio.pageview(user_id, "/unsubscribe?email=jane@example.com")  # expect: CIO012
