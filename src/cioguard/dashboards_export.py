"""``cioguard dashboards export DIR``: write the shipped Grafana dashboard and alert rules to DIR.

The wheel carries them under ``cioguard/dashboards/`` (``pip install cioguard`` users get them
without the repository)::

    cioguard dashboards export ./monitoring
    # ./monitoring/cioguard.json     Grafana dashboard (Dashboards → New → Import)
    # ./monitoring/alerts.yml        Prometheus alerting rules (rule_files: [alerts.yml])
    # ./monitoring/alerts_test.yml   their unit tests: promtool test rules alerts_test.yml
    # ./monitoring/runbooks.md       what each alert means, what to check, how to fix it
    cioguard dashboards path           # where the installed copies are

Existing files of the same names in DIR are replaced (re-run it after an upgrade). From a source
checkout (an editable install) the files are read from the repository's ``dashboards/`` and
``docs/`` directories instead. This module imports only the standard library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: Exported file name -> where it lives in a source checkout, relative to the repository root.
FILES: dict[str, str] = {
    "cioguard.json": "dashboards/cioguard.json",
    "alerts.yml": "dashboards/alerts.yml",
    "alerts_test.yml": "dashboards/alerts_test.yml",
    "runbooks.md": "docs/runbooks.md",
}


def _packaged() -> Traversable | None:
    folder = resources.files("cioguard").joinpath("dashboards")
    if all(folder.joinpath(name).is_file() for name in FILES):
        return folder
    return None


def sources() -> dict[str, Traversable]:
    """Each exported file name with the resource to copy; ``FileNotFoundError`` if any is missing."""
    folder = _packaged()
    if folder is not None:
        return {name: folder.joinpath(name) for name in FILES}
    # Source checkout: src/cioguard/dashboards_export.py -> the repository root is two levels up.
    root = Path(__file__).resolve().parents[2]
    found: dict[str, Traversable] = {name: root / relative for name, relative in FILES.items()}
    missing = [str(path) for path in found.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            "cioguard's dashboards are missing from this installation: " + ", ".join(missing)
        )
    return found


def export(directory: Path) -> list[Path]:
    """Write every shipped file into ``directory`` (created if needed); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, source in sources().items():
        target = directory / name
        target.write_bytes(source.read_bytes())
        written.append(target)
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard dashboards",
        description="The Grafana dashboard, Prometheus alert rules (with their promtool tests) and "
        "runbooks shipped with cioguard.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export_parser = commands.add_parser(
        "export",
        help="write cioguard.json, alerts.yml, alerts_test.yml and runbooks.md into DIR",
        description="Write cioguard.json, alerts.yml, alerts_test.yml and runbooks.md into DIR "
        "(created if needed; files of the same names are replaced).",
    )
    export_parser.add_argument("directory", metavar="DIR", type=Path, help="target directory")
    commands.add_parser(
        "path",
        help="print where the installed files are",
        description="Print where the installed dashboard and rule files are.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "path":
            for name, source in sources().items():
                print(f"{name}: {source}")
            return 0
        for path in export(args.directory):
            print(path)
    except OSError as exc:  # exit 2, like the other commands' I/O and usage errors
        print(f"cioguard dashboards: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
