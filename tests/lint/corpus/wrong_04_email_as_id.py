"""Pitfall 4: the email address used as the customer id."""

from dataclasses import dataclass

from customerio import CustomerIO

cio = CustomerIO("site", "key")


@dataclass
class User:
    id: int
    email: str


def register(user: User) -> None:
    cio.identify(user.email, email=user.email)  # expect: CIO004
    cio.identify("jane@example.com", email="jane@example.com")  # expect: CIO004


def order(user_email: str) -> None:
    cio.track(user_email.lower(), "order_completed")  # expect: CIO004


def remove(row: dict[str, str]) -> None:
    cio.delete(customer_id=row["email"])  # expect: CIO004


class ExtendedCustomerIO(CustomerIO):
    """An application's own subclass of the SDK client (a common way to add helpers)."""


extended = ExtendedCustomerIO("site", "key")


def synced(email: str) -> None:
    extended.identify(id=email, email=email)  # expect: CIO004


def merged(email: str) -> None:
    cio.merge_customers("id", "jane@example.com", "id", "usr_2")  # expect: CIO004
