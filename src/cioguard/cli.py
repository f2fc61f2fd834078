"""The ``cioguard`` command line.

::

    cioguard dashboards export DIR
    cioguard demo [--duration S] [--seed N] [--serve] [--report demo.html]
    cioguard emulator [--port P] [--https] [--latency S]
    cioguard lint PATH... [--format text|json|sarif] [--select CODES] [--ignore CODES]
    cioguard replay SPOOL [--inspect] [--track-url URL]
    cioguard worker --redis URL [--partitions N] [--metrics-port P]

Each subcommand lives in the module that owns its concern and exposes ``main(argv) -> int``;
this module only dispatches, so ``cioguard --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "dashboards": ("cioguard.dashboards_export", "export the Grafana dashboard, alert rules and runbooks"),
    "demo": ("cioguard.demo", "run the demo workload on the embedded Customer.io emulator"),
    "emulator": ("cioguard.testing.cli", "run the local Customer.io emulator"),
    "lint": ("cioguard.lint.cli", "statically audit Python code for Customer.io pitfalls"),
    "replay": ("cioguard.delivery.replay", "inspect or deliver a durable spool by hand"),
    "worker": ("cioguard.scaleout.worker", "deliver operations queued in Redis Streams (scale-out)"),
}


#: optional top-level package -> the extra that installs it
EXTRAS: dict[str, str] = {
    "redis": "redis", "starlette": "demo", "uvicorn": "demo", "httpx": "demo", "trustme": "testing"
}  # fmt: skip


def _usage() -> str:
    lines = ["usage: cioguard COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Run 'cioguard COMMAND --help' for the options of one command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] in {"-V", "--version"}:
        from cioguard.version import __version__

        print(f"cioguard {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"cioguard: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(SUBCOMMANDS[command][0])
    except ModuleNotFoundError as exc:  # an optional dependency of that command is not installed
        extra = EXTRAS.get(exc.name or "", "")
        hint = f": pip install 'cioguard[{extra}]'" if extra else ""
        print(f"cioguard {command}: needs the {exc.name!r} package{hint}", file=sys.stderr)
        return 2
    result: int = module.main(rest)
    return result
