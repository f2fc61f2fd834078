"""Pitfall 11: blasting the API at full speed during an import."""

from collections.abc import Iterable

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def import_users(users: Iterable[dict[str, str]]) -> None:
    for user in users:
        cio.identify(user["id"], email=user["mail"])  # expect: CIO011


def backfill(rows: list[tuple[str, str]]) -> None:
    while rows:
        user_id, plan = rows.pop()
        cio.track(user_id, "plan_imported", data={"plan": plan})  # expect: CIO011


def unsubscribe_all(ids: list[str]) -> list[object]:
    return [cio.suppress(i) for i in ids]  # expect: CIO011
