"""Pitfall 7, correct: cioguard.instrument() makes Track calls non-blocking."""

from customerio import CustomerIO

from cioguard import instrument

instrument()
cio = CustomerIO("site", "key")


async def action(user_id: str) -> None:
    cio.track(user_id, "action_taken")
