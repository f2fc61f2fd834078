import subprocess
import sys

import cioguard


def test_version_is_exposed() -> None:
    assert cioguard.__version__.count(".") == 2


def test_cli_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cioguard", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "emulator", "lint", "replay"):
        assert command in out
