"""Views calling the real customerio SDK (pointed at the emulator by the environment or a test)."""

from __future__ import annotations

import os
import time
from typing import Any

import customerio
from django.http import HttpRequest, HttpResponse, JsonResponse

import cioguard
from cioguard.scope import current_request

#: The SDK client the views use; tests set it, servers build it from CUSTOMERIO_* variables.
CLIENT: Any = None


def client() -> Any:
    global CLIENT
    if CLIENT is None:
        CLIENT = cioguard.track_client()
    return CLIENT


def signup(request: HttpRequest, plan: str) -> JsonResponse:
    client().track("user-1", "signed_up", data={"plan": plan})  # SYNC-CALL
    # ?hold=SECONDS keeps a sync worker busy, so concurrent requests spread over the workers.
    time.sleep(float(request.GET.get("hold", "0")))
    return JsonResponse({"plan": plan, "pid": os.getpid()})


async def asignup(request: HttpRequest, plan: str) -> JsonResponse:
    client().track("user-1", "signed_up", data={"plan": plan})  # ASYNC-CALL
    return JsonResponse({"plan": plan, "pid": os.getpid()})


def per_request_client(request: HttpRequest) -> HttpResponse:
    customerio.CustomerIO("site-id", "track-key")  # CLIENT-CALL
    return HttpResponse("built")


def _scope() -> dict[str, Any]:
    current = current_request()
    return {} if current is None else {"method": current.method, "route": current.route}


def scope(request: HttpRequest, item: int) -> JsonResponse:
    return JsonResponse(_scope())


async def ascope(request: HttpRequest, item: int) -> JsonResponse:
    return JsonResponse(_scope())


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")
