"""Resolution, data flow, noqa, select/ignore, walking and the project heuristic of ``cioguard lint``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from cioguard.lint import lint_paths, lint_source
from cioguard.lint.engine import noqa_codes
from cioguard.lint.rules import code_enabled, parse_codes


def codes(source: str, **kwargs: list[str]) -> list[tuple[int, str]]:
    return [(d.line, d.code) for d in lint_source(textwrap.dedent(source), "m.py", **kwargs)]


def write(root: Path, name: str, source: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


# ----------------------------------------------------------------------------- resolution
def test_module_alias_and_class_alias_are_followed() -> None:
    source = """
        import customerio as cio
        from customerio import CustomerIO as C
        a = cio.CustomerIO("s", "k")
        b = C("s", "k")
        a.track("u1", "Bad Name")
        b.track("u1", "BadName")
        C("s", "k").track("u1", "Bad-Name")
    """
    assert codes(source) == [(6, "CIO010"), (7, "CIO010"), (8, "CIO010")]


def test_calls_on_unrelated_objects_are_not_customerio_calls() -> None:
    source = """
        import customerio
        class Analytics:
            def track(self, user: str, name: str) -> None: ...
        segment = Analytics()
        segment.track("a@b.com", "Bad Name")
        def f(client):
            client.track("a@b.com", f"x_{client}")
    """
    assert codes(source) == []


def test_attribute_clients_annotated_parameters_and_factories() -> None:
    source = """
        from customerio import CustomerIO
        import cioguard
        class Service:
            client = CustomerIO("s", "k")
            def __init__(self) -> None:
                self.cio = CustomerIO("s", "k")
            def run(self) -> None:
                self.cio.track("u", "BadName")
                self.client.track("u", "BadName")
        def handler(c: "CustomerIO") -> None:
            c.track("u", "BadName")
        def handler2(c: CustomerIO | None) -> None:
            if c is not None:
                c.track("u", "BadName")
        cioguard.track_client().track("u", "BadName")
    """
    assert [line for line, _ in codes(source)] == [9, 10, 12, 15, 16]


def test_a_local_shadowing_a_client_global_is_not_a_client() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(cio_list: list[str]) -> None:
            cio = {}
            cio.track("u", "BadName")
    """
    assert codes(source) == []


def test_client_global_imported_from_another_linted_module(tmp_path: Path) -> None:
    write(tmp_path, "app/clients.py", "from customerio import CustomerIO\ncio = CustomerIO('s', 'k')\n")
    user = write(tmp_path, "app/views.py", "from app.clients import cio\n\ncio.track('u1', 'BadName')\n")
    other = write(
        tmp_path, "app/other.py", "from redis_stuff.clients import cio\n\ncio.track('u1', 'BadName')\n"
    )
    report = lint_paths([str(tmp_path)])
    assert [(Path(d.path).name, d.line, d.code) for d in report.diagnostics] == [("views.py", 3, "CIO010")]
    assert str(user) in {d.path for d in report.diagnostics}
    assert str(other) not in {d.path for d in report.diagnostics}


# ----------------------------------------------------------------------------- rules details
def test_data_flow_follows_the_last_assignment_in_order() -> None:
    source = """
        import time
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(sku: str) -> None:
            name = "product_viewed"
            cio.track("u", name)
            name = "viewed_" + sku
            cio.track("u", name)
            ts = time.time()
            ms = ts * 1000
            cio.track("u", "ok", timestamp=ms)
    """
    assert codes(source) == [(9, "CIO006"), (12, "CIO002")]


def test_ms_timestamp_keys_need_an_sdk_module() -> None:
    plain = "import time\ncache = {'expires_at': time.time() * 1000}\n"
    assert codes(plain) == []
    assert codes("import customerio\n" + plain) == []  # a cache entry: it never reaches the SDK


def test_ms_timestamps_count_only_in_data_that_reaches_an_sdk_call() -> None:
    source = """
        import json
        import time
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        ms = int(time.time() * 1000)
        token = json.dumps({"logged_in_at": ms})
        cache = Cache()
        cache.set("room", {"joined_at": ms})
        data = {"paid_at": ms}
        cio.track("u", "order_paid", data)
        attrs = {}
        attrs["seen_at"] = ms
        cio.identify("u", email="u@example.com", **attrs)
        cio.track("u", "order_shipped", {"shipped_at": ms})
        cio.identify("u", email="u@example.com", created_at=ms)
    """
    assert codes(source) == [(10, "CIO002"), (13, "CIO002"), (15, "CIO002"), (16, "CIO002")]


def test_ms_timestamps_given_to_tasks_pools_and_wrappers_of_the_app_still_count() -> None:
    source = """
        import copy
        import time
        from concurrent.futures import ThreadPoolExecutor
        from customerio import CustomerIO
        from app.tracking import track_event
        cio = CustomerIO("s", "k")
        ms = int(time.time() * 1000)
        BASE = {"created_at": ms}
        def job(uid, pool: ThreadPoolExecutor, tracker):
            notify.delay(uid, {"paid_at": ms})
            pool.submit(send, uid, {"sent_at": ms})
            tracker.event(uid, "x", {"seen_at": ms})
            track_event(uid, {"opened_at": ms})
            cio.identify(uid, email="u@example.com", **copy.deepcopy(BASE))
    """
    lines = [line for line, code in codes(source) if code == "CIO002"]
    assert lines == [9, 11, 12, 13, 14]


def test_ms_timestamps_found_in_the_shapes_data_takes_on_its_way_to_the_sdk() -> None:
    source = """
        import time
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        ms = int(time.time() * 1000)
        def props():
            return {"paid_at": ms}
        class Defaults:
            DATA = {"shipped_at": ms}
        def send(uid, data):
            cio.track(uid, "order", data)
        def job(uid):
            cio.track(uid, "paid", props())
            cio.track(uid, "shipped", Defaults.DATA)
            send(uid, {"refunded_at": ms})
            data = {}
            data |= {"opened_at": ms}
            data.update({"closed_at": ms})
            send(uid, data)
            events = []
            events.append({"type": "person", "action": "event", "timestamp": ms})
            cio.batch(events)
    """
    lines = [line for line, code in codes(source) if code == "CIO002"]
    assert lines == [7, 9, 15, 17, 18, 21]


def test_cio011_bounded_loops_and_rate_limiters() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(users, limiter) -> None:
            for i in range(10):
                cio.track(str(i), "seeded")
            for i in range(100_000):
                cio.track(str(i), "seeded")
            for u in users:
                limiter.acquire()
                cio.track(u, "imported")
            for u in sorted(["a", "b"]):
                cio.track(u, "imported")
            for u in users:
                for k in ["a", "b"]:
                    cio.track(u, k)
    """
    assert codes(source) == [(8, "CIO011"), (16, "CIO011")]


def test_cio011_not_for_a_short_slice_or_islice() -> None:
    source = """
        import itertools
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(emails, rows) -> None:
            for e in emails[:3]:
                cio.track("u", "invited", {"to": e})
            for r in itertools.islice(rows, 10):
                cio.track(r, "seeded")
            for r in rows[5:]:
                cio.track(r, "seeded")
    """
    assert codes(source) == [(11, "CIO011")]


def test_cio004_not_for_a_digest_of_an_email() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(user) -> None:
            cio.identify(user.hashed_email, plan="pro", email=user.email)
            cio.identify(user.sha256_email, plan="pro", email=user.email)
            cio.identify(user.email, plan="pro")
    """
    assert [c for c in codes(source) if c[1] == "CIO004"] == [(7, "CIO004")]


def test_cio009_handlers_decorators_and_request_param() -> None:
    source = """
        from customerio import APIClient
        from django.http import HttpRequest
        class ThingView:
            def post(self, request: HttpRequest) -> None:
                APIClient("app-key").send_email({})
        def helper() -> APIClient:
            return APIClient("app-key")
        @router.api_route("/x")
        def endpoint() -> None:
            helper()
        def startup() -> None:
            helper()
    """
    assert codes(source) == [(6, "CIO007"), (6, "CIO009"), (8, "CIO009")]


def test_cio007_only_in_the_async_function_itself() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        async def outer() -> None:
            def inner() -> None:
                cio.track("u", "done")
            inner()
            cio.track("u", "done")
    """
    assert codes(source) == [(8, "CIO007")]


@pytest.mark.parametrize(
    ("marker_file", "marker"),
    [
        ("setup_obs.py", "import cioguard\ncioguard.instrument(mode='background')\n"),
        ("asgi.py", "from cioguard.asgi import CioGuardMiddleware\napp = CioGuardMiddleware(None)\n"),
        ("Dockerfile", 'CMD ["opentelemetry-instrument", "uvicorn", "app:app"]\n'),
    ],
)
def test_cioguard_configured_anywhere_silences_cio007_and_cio011_for_track_calls(
    tmp_path: Path, marker_file: str, marker: str
) -> None:
    source = """
        import os
        from customerio import APIClient, CustomerIO
        cio = CustomerIO("s", "k")
        api = APIClient(os.environ["APP_KEY"])
        async def h(users) -> None:
            cio.track("u", "done")
            api.send_email({})
            for u in users:
                cio.identify(u, email="x")
    """
    write(tmp_path, "app.py", source)
    before = [(d.line, d.code) for d in lint_paths([str(tmp_path)]).diagnostics]
    assert before == [(7, "CIO007"), (8, "CIO007"), (10, "CIO007"), (10, "CIO011")]
    write(tmp_path, marker_file, marker)
    after = [(d.line, d.code) for d in lint_paths([str(tmp_path)]).diagnostics]
    assert after == [(8, "CIO007")]


# ----------------------------------------------------------------------------- noqa, select, ignore
BAD = """
from customerio import CustomerIO
cio = CustomerIO("s", "k")
def f(sku: str, email: str) -> None:
    cio.track("u", f"viewed_{sku}"){tail}
    cio.track("u", "Bad Name")
"""


@pytest.mark.parametrize(
    ("tail", "left"),
    [
        ("", {(5, "CIO006"), (6, "CIO010")}),
        ("  # noqa", {(6, "CIO010")}),
        ("  # NOQA:CIO006", {(6, "CIO010")}),
        ("  # noqa: CIO010", {(5, "CIO006"), (6, "CIO010")}),
        ("  # noqa: E501, CIO00", {(6, "CIO010")}),
        ("  # noqa: UP031", {(5, "CIO006"), (6, "CIO010")}),
    ],
)
def test_noqa(tail: str, left: set[tuple[int, str]]) -> None:
    assert set(codes(BAD.replace("{tail}", tail))) == left


def test_noqa_parsing() -> None:
    assert noqa_codes("x = 1") is None
    assert noqa_codes("x = 1  # noqa") == frozenset()
    assert noqa_codes("x = 1  # noqa: CIO006,CIO010") == frozenset({"CIO006", "CIO010"})


@pytest.mark.parametrize(
    ("select", "ignore", "left"),
    [
        ("", "", {"CIO006", "CIO010"}),
        ("CIO006", "", {"CIO006"}),
        ("CIO0", "CIO01", {"CIO006"}),
        ("CIO010", "CIO01", {"CIO010"}),
        ("CIO", "CIO006,cio010", set()),
        ("CIO007", "", set()),
    ],
)
def test_select_and_ignore(select: str, ignore: str, left: set[str]) -> None:
    found = codes(BAD.replace("{tail}", ""), select=parse_codes(select), ignore=parse_codes(ignore))
    assert {code for _, code in found} == left


def test_longest_prefix_decides() -> None:
    assert code_enabled("CIO006", ["CIO006"], ["CIO"])
    assert not code_enabled("CIO006", ["CIO"], ["CIO006"])
    assert not code_enabled("CIO006", ["CIO006"], ["CIO006"])


# ----------------------------------------------------------------------------- files
def test_syntax_errors_are_cio000_and_other_files_still_lint(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "def f(:\n")
    write(tmp_path, "ok.py", "import customerio\ncustomerio.CustomerIO('s','k').track('u', 'BadName')\n")
    report = lint_paths([str(tmp_path)])
    assert [(Path(d.path).name, d.code) for d in report.diagnostics] == [
        ("broken.py", "CIO000"),
        ("ok.py", "CIO010"),
    ]
    assert lint_paths([str(tmp_path)], ignore=["CIO000"]).diagnostics[0].code == "CIO010"


def test_walk_skips_virtualenvs_unless_given_explicitly(tmp_path: Path) -> None:
    bad = "import customerio\ncustomerio.CustomerIO('s','k').track('u', 'BadName')\n"
    for folder in (
        ".venv",
        "venv",
        "node_modules",
        ".git",
        "__pycache__",
        "build",
        "dist",
        "x/site-packages",
    ):
        write(tmp_path, f"{folder}/m.py", bad)
    write(tmp_path, "pkg/m.py", bad)
    write(tmp_path, "pkg/notes.txt", bad)
    report = lint_paths([str(tmp_path)])
    assert [Path(d.path).relative_to(tmp_path).as_posix() for d in report.diagnostics] == ["pkg/m.py"]
    explicit = lint_paths([str(tmp_path / "build"), str(tmp_path / "pkg" / "notes.txt")])
    assert len(explicit.diagnostics) == 2


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    report = lint_paths([str(tmp_path / "nope")])
    assert report.diagnostics == []
    assert len(report.errors) == 1
    assert "nope" in report.errors[0]


def test_parameters_and_loop_targets_shadow_module_values() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        EVENT = "Bad Name"
        def f(EVENT: str) -> None:
            cio.track("u", EVENT)
        def g(names: list[str]) -> None:
            for EVENT in names[:3]:
                cio.track("u", EVENT)  # noqa: CIO011
        cio.track("u", EVENT)
    """
    assert codes(source) == [(10, "CIO010")]


def test_pii_needs_a_personal_data_name_not_just_a_token() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        def f(card_type: str, email_template: str, card_number: str, user) -> None:
            cio.track("u", f"paid_with_{card_type}")
            cio.track("u", f"sent_{email_template}")
            cio.track("u", f"paid_{card_number}")
            cio.track("u", f"to_{user.mobile_number}")
            cio.track("u", "call_+1 415 555 0100")
    """
    found = codes(source)
    assert [line for line, code in found if code == "CIO012"] == [7, 8, 9]
    assert [line for line, code in found if code == "CIO006"] == [5, 6]  # CIO012 takes precedence


def test_hard_coded_keys_by_shape() -> None:
    source = """
        from customerio import APIClient, CustomerIO
        APIClient("f82ad78f695bd32f9d99")
        APIClient("20436c6351668b25a74a2c289a639d3f")
        CustomerIO("f82ad78f695bd32f9d98", "20436c6351668b25a74a2c289a639d3f")
        CustomerIO("site", api_key="sa_live_abc")
        CustomerIO("f82ad78f695bd32f9d98", "f82ad78f695bd32f9d99")
    """
    assert codes(source) == [(3, "CIO001"), (5, "CIO001"), (6, "CIO001")]


def test_odd_ranges_do_not_crash() -> None:
    source = """
        from customerio import CustomerIO
        cio = CustomerIO("s", "k")
        for i in range(1, 10, 0):
            cio.track(str(i), "x")
        for i in range(1, 10, 2):
            cio.track(str(i), "x")
    """
    assert codes(source) == [(5, "CIO011")]


def test_encodings(tmp_path: Path) -> None:
    cookie = "# -*- coding: latin-1 -*-\nimport customerio\n"
    cookie += "customerio.CustomerIO('s', 'k').track('u', 'Caf\xe9')\n"
    (tmp_path / "latin.py").write_bytes(cookie.encode("latin-1"))
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00garbage")
    report = lint_paths([str(tmp_path)])
    assert [(Path(d.path).name, d.code) for d in report.diagnostics] == [
        ("binary.py", "CIO000"),
        ("latin.py", "CIO010"),
    ]


def test_deeply_nested_code_is_cio000_not_a_crash() -> None:
    deep = "import customerio\nx = " + " + ".join(["'a'"] * 5000) + "\n"
    # Pinned to the interpreter's default: an earlier test (hypothesis) may leave a higher limit,
    # under which 5 000 levels parse fine and there is nothing to report.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        assert codes(deep) == [(1, "CIO000")]
    finally:
        sys.setrecursionlimit(limit)


def test_pytest_request_fixture_is_not_a_web_request() -> None:
    source = """
        import pytest
        from customerio import CustomerIO
        @pytest.fixture
        def cio(request) -> CustomerIO:
            return CustomerIO("s", "k")
        def test_it(request) -> None:
            CustomerIO("s", "k").track("u", "done")
        def view(request) -> None:
            CustomerIO("s", "k").track("u", "done")
    """
    assert codes(source) == [(10, "CIO007"), (10, "CIO009")]


def test_columns_count_characters_not_bytes() -> None:
    source = 'import customerio\nc = customerio.CustomerIO("s", "k"); x = "é"; c.track("u", "Bad Name")\n'
    (diag,) = lint_source(source)
    assert diag.col == source.splitlines()[1].index('"Bad Name"') + 1


UPDATES = """
from customerio import CustomerIO
cio = CustomerIO("site", "key")

def on_plan_changed(user):
    cio.identify(user.id, plan=user.plan)
"""


def test_email_less_identify_is_an_update_where_the_project_identifies_with_email(tmp_path: Path) -> None:
    """CIO005 is the *first* identify without email: once the project identifies people with an
    email (this module or another), its email-less identify() calls are later updates."""
    signup = UPDATES + "\ndef on_signup(user):\n    cio.identify(user.id, email=user.email)\n"
    assert [d.code for d in lint_source(textwrap.dedent(UPDATES))] == ["CIO005"]
    assert [d.code for d in lint_source(textwrap.dedent(signup))] == []
    (tmp_path / "updates.py").write_text(textwrap.dedent(UPDATES))
    assert [d.code for d in lint_paths([str(tmp_path)]).diagnostics] == ["CIO005"]
    signup_module = "from customerio import CustomerIO\ncio = CustomerIO('s', 'k')\n"
    (tmp_path / "signup.py").write_text(signup_module + "cio.identify('u1', email='a@example.com')\n")
    assert lint_paths([str(tmp_path)]).diagnostics == []
