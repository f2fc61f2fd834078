"""``cioguard lint PATH... [--format text|json|sarif] [--select CODES] [--ignore CODES]``.

Exit status: 0 nothing found, 1 diagnostics reported, 2 usage or I/O error (a missing path, an
unreadable file, an unknown option, a code in ``--select``/``--ignore`` that matches no rule).
``--select``/``--ignore`` take comma-separated codes or prefixes (``CIO006,CIO01``); ``# noqa`` /
``# noqa: CIO006`` at the end of a line silences it. A one-line summary ("checked 12 files, 3
findings") goes to standard error, so standard output stays the report alone. ``--output FILE``
writes the report to a file (useful for ``--format sarif`` in CI)::

    cioguard lint src/ --format sarif --output cioguard.sarif
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cioguard.lint.engine import lint_paths
from cioguard.lint.output import FORMATTERS
from cioguard.lint.rules import DOCS_URL, RULES, RUNTIME_ONLY, parse_codes, unknown_codes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard lint",
        # a pip user has no docs/ directory: point at the published catalogue
        description=f"Statically audit Python code for Customer.io pitfalls (catalogue: {DOCS_URL}).",
        epilog="rules: "
        + ", ".join(f"{r.code} {r.name}" for r in RULES.values())
        + f". Runtime only (no static check): {', '.join(RUNTIME_ONLY)}."
        + " Exit status: 0 clean, 1 findings, 2 usage or I/O error. Silence a line with '# noqa: CIO006'.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked for *.py)")
    parser.add_argument("--format", choices=sorted(FORMATTERS), default="text", help="output format")
    parser.add_argument("--select", default="", help="comma-separated codes or prefixes to report")
    parser.add_argument("--ignore", default="", help="comma-separated codes or prefixes to skip")
    parser.add_argument("--output", "-o", default=None, help="write the report to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    select, ignore = parse_codes(args.select), parse_codes(args.ignore)
    unknown = unknown_codes([*select, *ignore])
    if unknown:
        known = ", ".join(RULES)
        print(f"cioguard lint: unknown code(s) {', '.join(unknown)}; known codes: {known}", file=sys.stderr)
        return 2
    report = lint_paths(args.paths, select=select, ignore=ignore)
    for error in report.errors:
        print(f"cioguard lint: {error}", file=sys.stderr)
    rendered = FORMATTERS[args.format](report.diagnostics)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(rendered)
        except OSError as exc:
            print(f"cioguard lint: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(rendered)
    count = len(report.diagnostics)
    files = f"{report.files} file{'' if report.files == 1 else 's'}"
    print(f"checked {files}, {count} finding{'' if count == 1 else 's'}", file=sys.stderr)
    if report.errors:
        return 2
    return 1 if report.diagnostics else 0
