"""Pitfall 7: a synchronous Customer.io call blocks the event loop of an async handler."""

from customerio import CustomerIO
from starlette.requests import Request
from starlette.responses import JSONResponse

cio = CustomerIO("site", "key")


async def action(request: Request) -> JSONResponse:
    body = await request.json()
    cio.track(body["user_id"], "action_taken")  # expect: CIO007
    return JSONResponse({"ok": True})


class Handler:
    def __init__(self) -> None:
        self.client = CustomerIO("site", "key")

    async def on_event(self, user_id: str) -> None:
        self.client.identify(user_id, email=f"{user_id}@example.com")  # expect: CIO007
