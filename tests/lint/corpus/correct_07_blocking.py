"""Pitfall 7, correct: the blocking call runs in a worker thread, off the event loop."""

import asyncio

from customerio import CustomerIO
from starlette.requests import Request
from starlette.responses import JSONResponse

cio = CustomerIO("site", "key")


async def action(request: Request) -> JSONResponse:
    body = await request.json()
    await asyncio.to_thread(cio.track, body["user_id"], "action_taken")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: cio.track(body["user_id"], "action_logged"))
    return JSONResponse({"ok": True})


def sync_job(user_id: str) -> None:
    cio.track(user_id, "job_finished")
