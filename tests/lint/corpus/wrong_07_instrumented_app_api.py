"""Pitfall 7 under cioguard: Track calls are backgrounded, transactional sends still block."""

import os

from customerio import APIClient, CustomerIO, SendEmailRequest

import cioguard

cioguard.instrument()
cio = CustomerIO("site", "key")
api = APIClient(os.environ["CUSTOMERIO_APP_API_KEY"])


async def welcome(user_id: str, email: str) -> None:
    cio.track(user_id, "welcome_sent")
    api.send_email(SendEmailRequest(to=email, transactional_message_id="welcome"))  # expect: CIO007
