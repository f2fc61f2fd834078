"""Pitfall 6: event names built at run time."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def viewed(user_id: str, product_id: str, step: int) -> None:
    cio.track(user_id, f"viewed_{product_id}")  # expect: CIO006
    cio.track(user_id, "viewed_" + product_id)  # expect: CIO006
    cio.track(user_id, "step_%d_done" % step)  # noqa: UP031  # expect: CIO006
    cio.track(user_id, name="step_{}_done".format(step))  # noqa: UP032  # expect: CIO006
    event = f"checkout_{step}"
    cio.track(user_id, event)  # expect: CIO006
    cio.track_anonymous("anon-1", "_".join(["viewed", product_id]))  # expect: CIO006


def viewed_literal(user_id: str) -> None:
    cio.track(user_id, "viewed_SKU-12345")  # expect: CIO006
