"""Pitfall 13, correct: every literal event name is declared; names built at run time are not judged."""

from customerio import CustomerIO

import cioguard

cioguard.declare_events({"signed_up": {"method": str}, "order_completed": None})
cio = CustomerIO("site", "key")
EVENT = "signed_up"


def checkout(user_id: str) -> None:
    cio.track(user_id, "order_completed", data={"total": 10})
    cio.track(user_id, EVENT, data={"method": "google"})
