"""Pitfall 15, correct: the customerio 3.x spelling (properties in data=, the id first)."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")


def order_paid(user_id: str, props: dict[str, object]) -> None:
    cio.track(customer_id=user_id, name="order_paid", data={"plan": "pro", "total": 10})
    cio.track(user_id, "order_paid", props)
    cio.track(user_id, "order_paid", data=props, timestamp=1_700_000_000)
    cio.track_anonymous(anonymous_id="anon-1", name="invited", data={"source": "mail"})
    cio.identify(user_id, email="a@example.com", **props)
    cio.identify(id=user_id, email="a@example.com")
    cio.pageview(user_id, "/pricing", referrer="ads")
