"""Pitfall 14, correct: short fixed names and ids; large content stays out of attributes."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")
BIO = "x" * 2000  # built at run time: only the runtime rule can measure it (and does)


def report(user_id: str, bio_url: str) -> None:
    cio.track(user_id, "checkout_completed", data={"summary": "short"})
    cio.identify(user_id, email="a@example.com", bio_url=bio_url)
