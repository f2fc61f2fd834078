"""Clients reached through the app's own factories, across modules, and the tables shared with the runtime."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cioguard.lint import lint_paths, lint_source
from cioguard.lint.legacy import SPELLINGS as LINT_SPELLINGS
from cioguard.lint.literals import LIMITS
from cioguard.pitfalls.legacy import SPELLINGS
from cioguard.pitfalls.limits import MAX_ATTRIBUTE_VALUE_BYTES, MAX_ID_BYTES
from cioguard.pitfalls.names import MAX_EVENT_NAME_BYTES


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_factory_in_another_module_is_followed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/cio.py": """
                import functools
                from customerio import CustomerIO

                _client = None

                @functools.lru_cache(maxsize=1)
                def get_cio():
                    return CustomerIO("site", "key")

                def lazy():
                    global _client
                    if _client is None:
                        _client = CustomerIO("site", "key")
                    return _client
            """,
            "shop/jobs.py": """
                from shop.cio import get_cio, lazy

                def viewed(user_id, sku):
                    get_cio().track(user_id, f"viewed_{sku}")
                    client = lazy()
                    client.track(user_id, "OrderPlaced")
            """,
        },
    )
    report = lint_paths([str(tmp_path)])
    found = [(Path(d.path).name, d.line, d.code) for d in report.diagnostics]
    assert found == [("jobs.py", 5, "CIO006"), ("jobs.py", 7, "CIO010")]


def test_property_and_dataclass_held_clients() -> None:
    source = textwrap.dedent(
        """
        from dataclasses import dataclass, field
        from functools import cached_property
        from customerio import CustomerIO

        class Notifier:
            @cached_property
            def client(self) -> CustomerIO:
                return CustomerIO("site", "key")

            def paid(self, user_id: str) -> None:
                self.client.track(user_id, "Order Paid")

        @dataclass
        class Events:
            paid: str = "order_paid"

        EVENTS = Events()

        def paid(client: CustomerIO, user_id: str) -> None:
            client.track(user_id, EVENTS.paid)
        """
    )
    assert [(d.line, d.code) for d in lint_source(source)] == [(12, "CIO010")]


def test_a_factory_returning_something_else_is_not_a_client() -> None:
    source = textwrap.dedent(
        """
        from customerio import CustomerIO

        def get_settings():
            return {"site": "s"}

        def run():
            get_settings().track("u", f"x_{1}")
        """
    )
    assert lint_source(source) == []


def test_lint_tables_match_the_runtime() -> None:
    assert LIMITS == {
        "event name": MAX_EVENT_NAME_BYTES,
        "customer id": MAX_ID_BYTES,
        "attribute value": MAX_ATTRIBUTE_VALUE_BYTES,
    }
    assert {k: v for k, v in SPELLINGS.items() if k in LINT_SPELLINGS} == LINT_SPELLINGS
