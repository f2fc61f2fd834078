"""Pitfall 13: an event name outside the taxonomy the project declares."""

from customerio import CustomerIO

import cioguard

cioguard.declare_events(["signed_up", "order_completed"])
cio = CustomerIO("site", "key")


def checkout(user_id: str) -> None:
    cio.track(user_id, "order_complete", data={"total": 10})  # expect: CIO013
    cio.track(user_id, "order_completed", data={"total": 10})
