"""Pitfall 4, correct: an immutable database id; the email is an attribute."""

from dataclasses import dataclass

from customerio import CustomerIO

cio = CustomerIO("site", "key")


@dataclass
class User:
    id: int
    email: str


def register(user: User) -> None:
    cio.identify(user.id, email=user.email)
    cio.identify("usr_abc123", email="jane@example.com")


def order(user: User) -> None:
    cio.track(user.id, "order_completed", data={"email": user.email})


def merge(old_email: str, new_id: str) -> None:
    cio.merge_customers("id", new_id, "email", old_email)


def merged(user_id: str) -> None:
    cio.merge_customers("email", "jane@example.com", "id", user_id)
