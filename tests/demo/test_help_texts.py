"""Every ``cioguard COMMAND --help`` reads as plain text for a pip user: no RST markup, no
repository-relative paths (a wheel has no ``docs/``), and help text for every option."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

COMMANDS = [["demo"], ["emulator"], ["lint"], ["replay"], ["dashboards"], ["dashboards", "export"]]


def _help(command: list[str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "cioguard", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_is_plain_text_with_help_for_every_option(command: list[str]) -> None:
    text = _help(command)
    assert text.startswith("usage: cioguard " + " ".join(command))
    for markup in ("``", ":class:", ":func:", ":mod:", ".. "):
        assert markup not in text, (markup, text)
    # a path into the repository is no help to someone who installed the wheel
    assert not re.search(r"(?<!/)\bdocs/\w+\.md", text), text
    options = text.split("options:", 1)[1] if "options:" in text else ""
    for line in options.splitlines():
        # "  --flag VALUE   help" on one line, or the flag alone with its help on the next line
        if line.startswith("  -") and "  " not in line.strip():
            following = options.splitlines()[options.splitlines().index(line) + 1]
            assert following.startswith(" " * 10), f"no help text for {line.strip()!r}"


def test_a_command_whose_extra_is_missing_names_the_extra() -> None:
    # `cioguard worker --help` without the redis extra: one line naming the extra, no traceback
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'redis': raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from cioguard.cli import main\n"
        "sys.exit(main(['worker', '--help']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "cioguard worker: needs the 'redis' package: pip install 'cioguard[redis]'"
