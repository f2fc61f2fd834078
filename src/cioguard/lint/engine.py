"""Run the lint rules over source text, files and directory trees.

::

    from cioguard.lint.engine import lint_paths, lint_source
    report = lint_paths(["src/", "app.py"], select=["CIO"], ignore=["CIO010"])
    report.diagnostics     # sorted list[Diagnostic]; report.errors: unreadable paths (exit status 2)
    source = "from customerio import CustomerIO\\nCustomerIO('s', 'k').track('u1', f'viewed_{sku}')\\n"
    lint_source(source, "snippet.py")   # one file on its own: [Diagnostic(... "CIO006" ...)]

Project heuristic (CIO007, CIO011): when any linted file configures cioguard -- references
``cioguard.instrument``, ``CustomerIOInstrumentor`` or ``CioGuardMiddleware``, or mentions
``opentelemetry-instrument`` (also in a Dockerfile, Procfile, shell, YAML or TOML file found while
walking a directory) -- Track API calls no longer block and are rate-limited by the background sender,
so CIO007/CIO011 are dropped for them. App API (transactional) calls stay synchronous under cioguard
and keep CIO007/CIO011.

Static CIO013: when the project declares its event taxonomy with literal names
(``cioguard.declare_events([...])`` or ``declare_events({...})`` in any linted file), a literal event
name given to ``track()`` and the like that is not declared is reported.

Files that do not parse (syntax or decoding errors) are reported as ``CIO000`` diagnostics, so a
broken file is visible in every output format and can be silenced with ``--ignore CIO000``.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cioguard.lint.checker import Checker
from cioguard.lint.exports import blocking_instances, holder_classes
from cioguard.lint.rules import Diagnostic, code_enabled
from cioguard.lint.symbols import ModuleIndex

SKIP_DIRS = frozenset(
    {".venv", "venv", "node_modules", ".git", "__pycache__", "build", "dist", "site-packages"}
)
CONFIG_NAMES = re.compile(r"(?i)^(dockerfile.*|procfile|.*\.(sh|ya?ml|toml|ini|cfg|conf|env)|makefile)$")
OTEL_MARKER = "opentelemetry-instrument"
NOQA_RE = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_CONFIG_MAX_BYTES = 1 << 20


@dataclass
class FileResult:
    path: str
    diagnostics: list[Diagnostic]
    instrumented: bool = False
    client_globals: dict[str, str] = field(default_factory=dict)
    #: names bound by ``from x import name`` (candidates for clients defined in another module)
    imported: dict[str, str] = field(default_factory=dict)  # name -> the module it is imported from
    #: literal event names used (line, col, name), and those declared with declare_events
    event_names: list[tuple[int, int, str]] = field(default_factory=list)
    declared: set[str] | None = None
    #: an identify() here passes an email: email-less ones in the project are updates (CIO005)
    email_identified: bool = False


@dataclass
class Report:
    diagnostics: list[Diagnostic]
    errors: list[str]
    files: int = 0
    lines: int = 0


def noqa_codes(line: str) -> frozenset[str] | None:
    """None: no noqa; empty set: bare ``# noqa`` (everything); else the codes (prefixes) silenced."""
    match = NOQA_RE.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    return frozenset(re.split(r"[,\s]+", codes.upper())) if codes else frozenset()


def _silenced(diagnostic: Diagnostic, lines: Sequence[str]) -> bool:
    if not 0 < diagnostic.line <= len(lines) or "noqa" not in lines[diagnostic.line - 1].lower():
        return False
    codes = noqa_codes(lines[diagnostic.line - 1])
    return codes is not None and (not codes or any(diagnostic.code.startswith(c) for c in codes))


def _character_column(diagnostic: Diagnostic, lines: Sequence[str]) -> Diagnostic:
    """ast columns count UTF-8 bytes; editors and SARIF count characters: convert on non-ASCII lines."""
    if not 0 < diagnostic.line <= len(lines) or lines[diagnostic.line - 1].isascii():
        return diagnostic
    prefix = lines[diagnostic.line - 1].encode("utf-8")[: diagnostic.col - 1]
    return replace(diagnostic, col=len(prefix.decode("utf-8", errors="ignore")) + 1)


def analyse(
    source: str, path: str, tree: ast.Module | None = None, external_clients: Mapping[str, str] | None = None
) -> FileResult:
    """Run every rule on one module; no noqa, selection or project heuristic applied yet."""
    if tree is None:
        try:
            tree = ast.parse(source, filename=path)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            line = getattr(exc, "lineno", None) or 1
            col = getattr(exc, "offset", None) or 1
            msg = getattr(exc, "msg", str(exc))
            return FileResult(path, [Diagnostic(path, line, col, "CIO000", f"could not parse file: {msg}")])
    index = ModuleIndex.build(tree, external_clients, source or None)
    instrumented = index.instrumented or OTEL_MARKER in source
    imported = {
        name: full.rsplit(".", 1)[0].lstrip(".")
        for name, full in index.aliases.items()
        if "." in full and full.rsplit(".", 1)[-1] == name
    }
    if source and not external_clients and "customerio" not in source and "cioguard" not in source:
        # fast path: without the SDK or cioguard no rule can fire (clients can only come from those
        # imports, or from another module's client global, which the second pass supplies)
        return FileResult(path, [], instrumented, {}, imported)
    checker = Checker(index, path)
    try:
        checker.visit(tree)
        checker.finish()
    except RecursionError:  # e.g. a generated expression thousands of operators deep
        diag = Diagnostic(path, 1, 1, "CIO000", "could not audit file: expressions nested too deeply")
        return FileResult(path, [diag], instrumented, {}, imported)
    # factories travel with a "factory:" prefix, so an importer calls them rather than uses them
    # client-holding classes travel as "holder:": an importer that instantiates one builds a client
    # ... and instances whose methods block as "calls:method=kind,...": CIO007 where a view calls one
    exported = {
        **{
            n: "calls:" + ",".join(f"{m}={k}" for m, k in sorted(ms.items()))
            for n, ms in blocking_instances(checker).items()
        },
        **{n: f"holder:{k}" for n, k in holder_classes(checker).items()},
        **index.client_globals,
        **{n: f"factory:{k}" for n, k in index.client_factories.items()},
    }
    names = [
        (getattr(n, "lineno", 1), getattr(n, "col_offset", 0) + 1, name) for n, name in checker.event_names
    ]
    declared = index.declared_events if index.declares_events else None
    return FileResult(
        path,
        sorted(set(checker.diagnostics)),
        instrumented,
        exported,
        imported,
        names,
        declared,
        checker.email_identified,
    )


def taxonomy_diagnostics(results: Sequence[FileResult]) -> None:
    """Static CIO013: literal event names outside the taxonomy the project declares (in place)."""
    declared: set[str] = set()
    found = False
    for result in results:
        if result.declared is not None:
            found = True
            declared |= result.declared
    if not found:
        return
    for result in results:
        for line, col, name in result.event_names:
            if name not in declared:
                result.diagnostics.append(
                    Diagnostic(
                        result.path,
                        line,
                        col,
                        "CIO013",
                        f"event name {name[:60]!r} is not in the taxonomy declared with declare_events(); "
                        "a typo never matches campaign triggers: fix it or declare it",
                    )
                )


def finalize(
    results: Iterable[FileResult],
    sources: Mapping[str, str],
    *,
    instrumented: bool,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> list[Diagnostic]:
    """Apply the project heuristics, ``--select``/``--ignore`` and ``# noqa``; return sorted
    diagnostics. CIO005 is the *first* identify without email: a project that identifies people
    with an email somewhere has its email-less identify() calls taken as later updates."""
    results = list(results)
    email_identified = any(result.email_identified for result in results)
    out: list[Diagnostic] = []
    for result in results:
        lines = sources.get(result.path, "").splitlines()
        for diag in result.diagnostics:
            if instrumented and diag.instrumentable:
                continue
            if email_identified and diag.code == "CIO005":
                continue
            if code_enabled(diag.code, select, ignore) and not _silenced(diag, lines):
                out.append(_character_column(diag, lines))
    return sorted(out)


def lint_source(
    source: str, path: str = "<string>", *, select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> list[Diagnostic]:
    """Lint one module on its own (the project heuristic sees only this file)."""
    result = analyse(source, path)
    taxonomy_diagnostics([result])
    return finalize([result], {path: source}, instrumented=result.instrumented, select=select, ignore=ignore)


def iter_files(paths: Sequence[str], errors: list[str]) -> tuple[list[str], list[str]]:
    """(python files, config files) under ``paths``; explicit files are kept whatever their name."""
    python: list[str] = []
    config: list[str] = []
    for raw in paths:
        if os.path.isfile(raw):
            python.append(raw)
            continue
        if not os.path.isdir(raw):
            errors.append(f"{raw}: no such file or directory")
            continue
        for root, dirs, files in os.walk(raw):
            # skip virtualenvs, build output and VCS folders below an explicitly given directory
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(files):
                if name.endswith(".py"):
                    python.append(os.path.join(root, name))
                elif CONFIG_NAMES.match(name):
                    config.append(os.path.join(root, name))
    return python, config


def _read(path: str, errors: list[str]) -> str | None:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        errors.append(f"{path}: {exc.strerror or exc}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:  # a PEP 263 coding cookie (``# -*- coding: latin-1 -*-``)
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        # not decodable: keep the text so the file still shows up, as CIO000 from the parser
        return "\x00" + data.decode("utf-8", errors="replace")


def lint_paths(paths: Sequence[str], *, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> Report:
    """Lint files and directory trees as one project (two passes: modules, then cross-module clients)."""
    errors: list[str] = []
    python, config = iter_files(paths, errors)
    sources: dict[str, str] = {}
    results: list[FileResult] = []
    for path in python:
        source = _read(path, errors)
        if source is None:
            continue
        sources[path] = source
        result = analyse(source, path)
        results.append(result)
    instrumented = any(r.instrumented for r in results) or _config_mentions_otel(config)
    # client globals defined in one module and imported by another: re-check importers only
    # `from app.clients import cio` matches the global `cio` of a file whose path ends in app/clients.py
    exported: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for result in results:
        parts = Path(result.path).with_suffix("").parts
        parts = parts[:-1] if parts and parts[-1] == "__init__" else parts
        for name, kind in result.client_globals.items():
            exported.setdefault(name, []).append((parts, kind))
    for i, result in enumerate(results):
        external: dict[str, str] = {}
        for name, module in result.imported.items():
            wanted = tuple(module.split("."))
            for parts, kind in exported.get(name, ()):
                if parts[-len(wanted) :] == wanted:
                    external[name] = kind
        if external:
            results[i] = analyse(sources[result.path], result.path, external_clients=external)
    taxonomy_diagnostics(results)
    diagnostics = finalize(results, sources, instrumented=instrumented, select=select, ignore=ignore)
    lines = sum(s.count("\n") for s in sources.values())
    return Report(diagnostics, errors, len(sources), lines)


def _config_mentions_otel(config: Sequence[str]) -> bool:
    for path in config:
        try:
            if os.path.getsize(path) <= _CONFIG_MAX_BYTES and OTEL_MARKER in Path(path).read_text(
                errors="replace"
            ):
                return True
        except OSError:
            continue
    return False
