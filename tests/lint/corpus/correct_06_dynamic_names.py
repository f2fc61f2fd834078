"""Pitfall 6, correct: a fixed name; the variable part goes in data."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")
PREFIX = "checkout"


def viewed(user_id: str, product_id: str, step: int) -> None:
    cio.track(user_id, "product_viewed", data={"product_id": product_id})
    cio.track(user_id, "checkout_step_completed", data={"step": step})
    event = "checkout_started"
    cio.track(user_id, event)
    cio.pageview(user_id, f"/products/{product_id}")


def subscription_states(user_id: str) -> None:
    for status in ("active", "canceled"):  # a few known names, spelled out: not dynamic
        cio.track(user_id, f"subscription_{status}", data={})


def versioned(user_id: str) -> None:
    cio.track(user_id, "checkout_v2_started")
    cio.track(user_id, "onboarding_step_3")
    cio.track(user_id, "sale_2024_joined")
