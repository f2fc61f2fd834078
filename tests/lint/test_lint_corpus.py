"""The corpus: each seed pitfall as a wrong_*.py file and its correct_*.py twin.

A wrong file marks every expected diagnostic with ``# expect: CIO0xx [CIO0yy]`` on the reported line;
the linter must report exactly those (no more, no fewer). A correct twin must lint clean. Each file is
linted on its own, so a file configuring cioguard does not silence the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cioguard.lint import RULES, lint_paths

CORPUS = Path(__file__).parent / "corpus"
EXPECT_RE = re.compile(r"#\s*expect:\s*((?:CIO\d{3}\s*)+)")
WRONG = sorted(CORPUS.glob("wrong_*.py"))
CORRECT = sorted(CORPUS.glob("correct_*.py"))


def expectations(path: Path) -> set[tuple[int, str]]:
    expected: set[tuple[int, str]] = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = EXPECT_RE.search(line)
        if match:
            expected.update((number, code) for code in match.group(1).split())
    return expected


def found(path: Path) -> set[tuple[int, str]]:
    report = lint_paths([str(path)])
    assert report.errors == []
    return {(d.line, d.code) for d in report.diagnostics}


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_wrong_examples_report_exactly_the_marked_lines(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} marks no expected diagnostic"
    assert found(path) == expected


@pytest.mark.parametrize("path", CORRECT, ids=[p.stem for p in CORRECT])
def test_correct_twins_lint_clean(path: Path) -> None:
    assert found(path) == set()


def test_every_static_rule_has_a_wrong_example_and_a_correct_twin() -> None:
    covered = {code for path in WRONG for _, code in expectations(path)}
    assert covered == set(RULES) - {"CIO000"}
    twins = {p.name.replace("wrong_", "correct_") for p in WRONG}
    prefixes = {name.split("_")[1] for name in twins}
    assert prefixes <= {p.name.split("_")[1] for p in CORRECT}
