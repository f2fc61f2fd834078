"""Pitfall 12, correct: PII only in data, where it can be deleted."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def sent(user_id: str, email: str, phone_number: str) -> None:
    cio.track(user_id, "email_sent", data={"recipient": email})
    cio.track(user_id, "sms_sent", data={"recipient": phone_number})


def unsubscribed(user_id: str) -> None:
    cio.pageview(user_id, "/unsubscribe")
