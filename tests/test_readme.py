"""Every command in the README runs: here, or in the test named next to it in COVERED."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cioguard
from cioguard.config import OBJECT_OPTIONS, OPTION_SPECS, env_name

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent

#: Commands run by another test (or by CI itself), and where.
COVERED = {
    "make demo": "tests/demo/test_demo.py runs `python -m cioguard demo`, which is all `make demo` runs",
    "make test": ".ci/run",
    "make venv": ".ci/run (make test runs it first)",
    "cioguard demo --report demo.html": "tests/demo/test_demo.py",
    "cioguard demo": "tests/demo/test_demo.py",
    "opentelemetry-instrument python app.py": "tests/instrumentation/test_entry_point.py",
    "promtool test rules dashboards/alerts_test.yml": "tests/prometheus/test_dashboard_files.py",
    "cioguard dashboards export monitoring/": "tests/prometheus/test_packaged_dashboards.py",
    "make bench": "tests/benchmarks/test_bench_smoke.py runs `python -m benchmarks --quick`",
    "OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none "
    "opentelemetry-instrument python app.py": "tests/otel/test_zero_code.py",
    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 "
    "opentelemetry-instrument python app.py": "tests/otel/test_zero_code.py (to a local collector)",
    "OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=prometheus OTEL_LOGS_EXPORTER=none "
    "opentelemetry-instrument python app.py": "tests/otel/test_metrics_option.py",
}


def _shell_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        # Comment lines are prose; a trailing backslash continues the command on the next line.
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    inline = re.findall(r"`((?:cioguard|make|promtool|opentelemetry-instrument|flake8) [^`]+)`", README)
    return lines + inline


def _run(command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    if argv[0] in {"cioguard", "flake8"}:
        argv[0] = str(BIN / argv[0])
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_every_readme_command_is_covered() -> None:
    runnable_here = (
        "cioguard lint",
        "flake8 ",
        "cioguard emulator",
        "cioguard replay",
        "pip install",
        "cioguard demo --serve",
        "cioguard worker",
    )
    for command in _shell_lines():
        assert command in COVERED or command.startswith(runnable_here), (
            f"README command not tested: {command}"
        )


@pytest.mark.parametrize(
    "command",
    [
        "cioguard lint src/",
        "cioguard lint src/ --select CIO00 --ignore CIO005",
        "flake8 --select CIO src/",
    ],
)
def test_lint_commands_pass_on_our_own_code(command: str) -> None:
    assert command in _shell_lines()
    completed = _run(command)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_sarif_command_writes_a_sarif_log(tmp_path: Path) -> None:
    assert "cioguard lint src/ --format sarif -o cioguard.sarif" in _shell_lines()
    out = tmp_path / "cioguard.sarif"
    completed = _run(f"cioguard lint src/ --format sarif -o {out}")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_emulator_command_serves_until_interrupted() -> None:
    assert "cioguard emulator --https --port 8080" in _shell_lines()
    process = subprocess.Popen(
        [str(BIN / "cioguard"), "emulator", "--https", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert "https://127.0.0.1:" in first
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0


def test_replay_inspects_and_delivers_a_spool_left_by_a_dead_endpoint(tmp_path: Path) -> None:
    from cioguard.testing import FakeCustomerIO

    assert "cioguard replay SPOOL --inspect" in _shell_lines()
    assert "cioguard replay SPOOL" in _shell_lines()
    spool = tmp_path / "spool.sqlite"
    script = (
        "import cioguard\n"
        "from customerio import CustomerIO\n"
        f"cioguard.instrument(spool_path={str(spool)!r}, track_url='http://127.0.0.1:9', exit_timeout=0.5,"
        " pitfalls='off')\n"
        "client = CustomerIO('site-id', 'track-key')\n"
        "for n in range(3):\n"
        "    client.track('u1', 'spooled', data={'n': n})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, capture_output=True)
    inspected = _run(f"cioguard replay {spool} --inspect")
    assert inspected.returncode == 0, inspected.stderr
    assert "3" in inspected.stdout
    with FakeCustomerIO(https=False) as fake:
        delivered = _run(f"cioguard replay {spool} --track-url {fake.track_url}")
        assert delivered.returncode == 0, delivered.stdout + delivered.stderr
        assert sorted(event.data["n"] for event in fake.events) == [0, 1, 2]


def test_install_lines_name_real_extras() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for line in _shell_lines():
        if line.startswith("pip install"):
            for extra in re.findall(r"\[([\w,-]+)\]", line):
                for name in extra.split(","):
                    assert name in extras, f"{line}: no extra named {name!r}"


def test_configuration_table_lists_every_option_with_its_variable() -> None:
    for option in OPTION_SPECS:
        row = re.search(rf"^\| `{option}` \| ([^|]+) \|", README, flags=re.M)
        assert row is not None, f"option {option} missing from the README's configuration table"
        if option not in OBJECT_OPTIONS:
            assert f"`{env_name(option)}`" in row.group(1)


def test_metric_and_pitfall_tables_match_the_code() -> None:
    for code in (f"CIO{n:03d}" for n in range(1, 15)):
        row = re.search(rf"^\| {code} \| (\w+) \|", README, flags=re.M)
        assert row is not None, code
        category = getattr(cioguard, row.group(1))
        assert category.code == code
    assert os.path.exists(ROOT / "docs" / "pitfalls.md")
    assert os.path.exists(ROOT / "docs" / "demo-report.png")


def test_pitfall_docs_have_the_anchors_lint_links_to() -> None:
    from cioguard.lint import RULES

    docs = (ROOT / "docs" / "pitfalls.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        if code == "CIO000":
            continue
        anchor = rule.help_uri.rsplit("#", 1)[1]
        assert f'<a id="{anchor}"></a>' in docs, code
