"""CIO009 through a wrapper class defined in another module: ``class CustomerIOService`` whose
``__init__`` builds the SDK client, instantiated per request, per item or per task elsewhere (the
shape of many real integrations: a service class in ``cio.py``, used from ``views.py``/``tasks.py``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cioguard.lint import lint_paths

SERVICE = """
    from customerio import CustomerIO


    class CustomerIOService:
        def __init__(self):
            self.client = CustomerIO("site", "key")

        def signed_up(self, user_id, email):
            self.client.identify(user_id, email=email)


    class Shared:
        client = CustomerIO("site", "key")  # a class attribute: built once at import
"""

USERS = """
    from django.http import JsonResponse
    from concurrent.futures import ThreadPoolExecutor

    from app.cio import CustomerIOService, Shared

    SERVICE = CustomerIOService()  # once per process: fine


    def signup(request):
        CustomerIOService().signed_up(str(request.user.pk), request.user.email)
        return JsonResponse({"ok": True})


    def shared(request):
        Shared().client.identify("u1", email="u1@example.com")
        return JsonResponse({"ok": True})


    def import_rows(rows):
        for row in rows[:100]:
            CustomerIOService().signed_up(row["id"], row["email"])


    def push(user):
        CustomerIOService().signed_up(user["id"], user["email"])


    def sync(users):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(push, users))
"""


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_a_client_holding_class_instantiated_per_request_item_or_task_is_cio009(tmp_path: Path) -> None:
    _write(tmp_path, "app/__init__.py", "")
    _write(tmp_path, "app/cio.py", SERVICE)
    _write(tmp_path, "app/users.py", USERS)
    found = [
        (Path(d.path).name, d.line, f"{d.code} {d.message.split(';')[0]}")
        for d in lint_paths([str(tmp_path)], select=["CIO009"]).diagnostics
    ]
    assert found == [
        ("users.py", 11, "CIO009 CustomerIOService() builds a CustomerIO client in its __init__ and is "
         "instantiated per request in signup()"),
        ("users.py", 22, "CIO009 CustomerIOService() builds a CustomerIO client in its __init__ and is "
         "instantiated in a loop"),
        ("users.py", 26, "CIO009 CustomerIOService() builds a CustomerIO client in its __init__ and is "
         "instantiated per task in push() (run once per item)"),
    ]  # fmt: skip


def test_within_one_module_the_constructor_line_is_reported_once(tmp_path: Path) -> None:
    view = "\n\ndef signup(request):\n    CustomerIOService().signed_up('1', 'a@b.c')\n"
    _write(tmp_path, "one.py", textwrap.dedent(SERVICE) + view)
    found = [(d.line, d.code) for d in lint_paths([str(tmp_path)], select=["CIO009"]).diagnostics]
    assert found == [(7, "CIO009")]  # self.client = CustomerIO(...)


SAME_MODULE_VIEWS = """
    from customerio import CustomerIO


    class CioService:
        def __init__(self):
            self.client = CustomerIO("site", "key")

        def signed_up(self, user_id, email):
            self.client.identify(user_id, email=email)

        def nightly(self, user_id):
            self.client.track(user_id, "nightly_report_sent")


    SERVICE = CioService()


    def signup(request):
        SERVICE.signed_up(str(request.user.pk), request.user.email)


    def cron():
        SERVICE.nightly("u1")
"""


def test_a_method_of_a_module_level_service_called_from_a_view_is_cio007(tmp_path: Path) -> None:
    _write(tmp_path, "views.py", SAME_MODULE_VIEWS)
    found = [(d.line, d.code, d.message.split(",")[0]) for d in lint_paths([str(tmp_path)]).diagnostics]
    # identify() runs per request through SERVICE.signed_up(); nightly() is not called from a view
    assert found == [
        (10, "CIO007", "synchronous Customer.io call identify() in CioService.signed_up()"),
    ]
    _write(tmp_path, "main.py", "import cioguard\ncioguard.instrument()\n")
    assert lint_paths([str(tmp_path)]).diagnostics == []  # background delivery: nothing blocks


def test_an_app_api_client_per_task_points_at_app_client(tmp_path: Path) -> None:
    task = """
        from celery import shared_task
        from customerio import APIClient


        @shared_task
        def welcome(email):
            APIClient("app-key").send_email(None)
    """
    _write(tmp_path, "tasks.py", task)
    (found,) = lint_paths([str(tmp_path)], select=["CIO009"]).diagnostics
    assert "cioguard.app_client()" in found.message
    assert "track_client" not in found.message


WRAPPER = """
    from customerio import APIClient, CustomerIO


    class CIOApi:
        def __init__(self):
            self.cio = CustomerIO("site", "key")
            self.api = APIClient("app-key")

        def identify(self, user_id, email):
            self.cio.identify(user_id, email=email)

        def mail(self, message):
            self.api.send_email(message)

        def helper(self):
            return 1


    cio_api = CIOApi()
"""

WRAPPER_VIEWS = """
    from app.cio import cio_api


    def signup(request):
        cio_api.identify("1", "a@example.com")
        cio_api.helper()


    async def receipt(request):
        cio_api.mail(None)


    def nightly():
        cio_api.identify("1", "a@example.com")
"""


def test_a_wrapper_instance_imported_from_another_module_is_cio007_in_views(tmp_path: Path) -> None:
    _write(tmp_path, "app/__init__.py", "")
    _write(tmp_path, "app/cio.py", WRAPPER)
    _write(tmp_path, "app/views.py", WRAPPER_VIEWS)
    found = [
        (Path(d.path).name, d.line, d.message.split(";")[0].split(": every")[0])
        for d in lint_paths([str(tmp_path)], select=["CIO007"]).diagnostics
    ]
    assert found == [
        ("views.py", 6, "synchronous Customer.io call cio_api.identify() in signup(), which serves web "
         "requests"),
        ("views.py", 11, "synchronous Customer.io call cio_api.mail() inside async def receipt() blocks "
         "the event loop"),
    ]  # fmt: skip
    # with cioguard configured, Track calls no longer block; the App API send still does
    _write(tmp_path, "main.py", "import cioguard\ncioguard.instrument()\n")
    still = [(d.line, d.code) for d in lint_paths([str(tmp_path)], select=["CIO007"]).diagnostics]
    assert still == [(11, "CIO007")]


def test_a_helper_method_taking_an_sdk_request_is_not_a_view(tmp_path: Path) -> None:
    source = """
        from customerio import APIClient
        from django.views import View

        API = APIClient("app-key")


        class Mailer:
            def send(self, request):  # a SendEmailRequest, from a Celery task
                API.send_email(request)


        class ReceiptView(View):
            def post(self, request):
                API.send_email(None)
    """
    _write(tmp_path, "mail.py", source)
    found = [(d.line, d.code) for d in lint_paths([str(tmp_path)], select=["CIO007"]).diagnostics]
    assert found == [(15, "CIO007")]  # the class-based view's post(), not Mailer.send
