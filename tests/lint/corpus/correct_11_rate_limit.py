"""Pitfall 11, correct: throttled imports, or loops of a small fixed size."""

import time
from collections.abc import Iterable

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def import_users(users: Iterable[dict[str, str]]) -> None:
    for user in users:
        cio.identify(user["id"], email=user["mail"])
        time.sleep(0.01)


def seed() -> None:
    for i in range(3):
        cio.identify(f"usr_{i}", email=f"user{i}@example.com")
    for plan in ("free", "pro"):
        cio.track("usr_admin", "plan_seeded", data={"plan": plan})
