"""Pitfall 5: identify without an email attribute."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def register(user_id: str) -> None:
    cio.identify(user_id, first_name="Jane", plan="pro")  # expect: CIO005
    cio.identify(id=user_id)  # expect: CIO005
