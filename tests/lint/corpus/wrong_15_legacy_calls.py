"""Pitfall 15: calls in the customerio 1.x/2.x style, which 3.x rejects with TypeError."""

import logging

from customerio import CustomerIO

cio = CustomerIO("site", "key")
log = logging.getLogger(__name__)


def order_paid(user_id: str, props: dict[str, object]) -> None:
    try:
        cio.track(customer_id=user_id, name="order_paid", plan="pro", total=10)  # expect: CIO015
        cio.track(user_id, "order_paid", **props)  # expect: CIO015
        cio.track(user_id, "order_paid", props, None, 0, "extra")  # expect: CIO015
        cio.track(customer_id=user_id, data=props)  # expect: CIO015
        cio.track_anonymous("anon-1", "invited", source="mail")  # expect: CIO015
        cio.identify(customer_id=user_id, email="a@example.com")  # expect: CIO015
        cio.identify(user_id, {"email": "a@example.com"})  # expect: CIO015
    except Exception:  # the TypeError is swallowed: every event above is lost
        log.exception("tracking failed")
