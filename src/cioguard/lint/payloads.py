"""Which timestamp findings (CIO002) of a module are about data that may reach Customer.io.

A module that imports ``customerio`` also builds dicts for everything else (a JWT, a cache entry, a
browser payload, another library's ``.track()``): a ``*_at`` key holding milliseconds there is
nobody's pitfall. Each call is classified (:func:`call_kind`), and a finding in a dict or keyword:

- inside the arguments of an SDK call, or of a call that may lead to one (a function or method of
  the module: ``send(uid, data)``, ``self.post(...)``), is reported;
- directly inside a serialising, caching, logging or HTTP library's call (``json.dumps({...})``,
  ``cache.set(key, {...})``, ``log.info(...)``) is dropped;
- written into a variable (``data = {...}``, ``data["paid_at"] = ms``, ``events.append({...})``,
  ``self.payload = {...}``) is held, and reported at the end of the module unless every use of that
  variable is an argument of another library's call (or there is none);
- anywhere else (``return {...}``, a tuple, a default argument) is reported, as before.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

CallKind = Literal["sdk", "local", "external", "mutator", "transparent"]
#: Container methods that put the dict into their receiver (``events.append({...})``).
MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "add", "appendleft"})
_BUILTINS = frozenset(dir(builtins)) - {"dict"}
#: Libraries whose calls take data for something else (serialising, caching, logging, HTTP).
EXTERNAL_MODULES = frozenset(
    {
        "json", "orjson", "ujson", "simplejson", "rapidjson", "msgpack", "pickle", "marshal",
        "base64", "hashlib", "hmac", "jwt", "jose", "logging", "structlog", "requests", "httpx",
        "aiohttp", "urllib", "urllib3", "redis", "pymemcache", "memcache", "django", "flask",
        "werkzeug", "starlette", "fastapi", "sqlalchemy", "boto3", "botocore",
    }
)  # fmt: skip
#: Methods that do the same whatever the receiver (``cache.set(k, {...})``, ``log.info(...)``).
EXTERNAL_METHODS = frozenset(
    {
        "dumps", "dump", "encode", "jsonify", "set", "setex", "hset", "hmset", "mset", "lpush",
        "rpush", "publish", "xadd", "put_item", "debug", "info", "warning", "warn", "error",
        "exception", "critical", "log",
    }
)  # fmt: skip


def call_kind(node: ast.Call, is_sdk: bool, qualname: Callable[[ast.expr], str | None]) -> CallKind:
    """What a call does with the dicts among its arguments: ``external`` only for the libraries and
    methods above; anything else of unknown use (the app's own functions, task ``.delay()``, a
    wrapper object's methods) may lead to the SDK, so its arguments count."""
    if is_sdk:
        return "sdk"
    func = node.func
    root = (qualname(func) or "").split(".", 1)[0]
    if isinstance(func, ast.Attribute):
        receiver = func.value
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
            return "local"
        if func.attr in MUTATORS and isinstance(receiver, (ast.Name, ast.Attribute)):
            return "mutator"
        return "external" if root in EXTERNAL_MODULES or func.attr in EXTERNAL_METHODS else "local"
    if isinstance(func, ast.Name):
        if func.id == "dict":
            return "transparent"  # dict(paid_at=ms): a dict literal by another spelling
        return "external" if func.id in _BUILTINS or root in EXTERNAL_MODULES else "local"
    return "local"


def _name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class Payloads:
    def __init__(self) -> None:
        self._calls: list[tuple[CallKind, str | None]] = []  # the calls whose arguments are visited
        #: the variable an assignment being visited writes to
        self.holder: str | None = None
        self._held: list[tuple[str, ast.AST, str]] = []

    @contextmanager
    def call(self, node: ast.Call, kind: CallKind) -> Iterator[None]:
        receiver = (
            _name(node.func.value) if kind == "mutator" and isinstance(node.func, ast.Attribute) else None
        )
        self._calls.append((kind, receiver))
        try:
            yield
        finally:
            self._calls.pop()

    @contextmanager
    def assigning(self, target: ast.expr | None) -> Iterator[None]:
        """Visiting the value of ``target = value`` (or ``target[...] = value``, ``target |= value``)."""
        previous, self.holder = self.holder, None if target is None else _name(target)
        try:
            yield
        finally:
            self.holder = previous

    def found(self, node: ast.AST, message: str) -> bool:
        """True: report now. Otherwise dropped, or held under the variable that holds it."""
        calls = [entry for entry in self._calls if entry[0] != "transparent"]
        if any(kind in ("sdk", "local") for kind, _ in calls):
            return True
        if calls:
            kind, receiver = calls[-1]
            if kind == "mutator" and receiver is not None:
                self._held.append((receiver, node, message))
            return False  # (an external call's argument: another library's data)
        if self.holder is not None:
            self._held.append((self.holder, node, message))
            return False
        return True

    def reaching_sdk(
        self, tree: ast.AST, kind_of: Callable[[ast.Call], CallKind]
    ) -> Iterator[tuple[ast.AST, str]]:
        """Held findings whose variable is used other than as another library's call argument."""
        if not self._held:
            return
        held = {name for name, _, _ in self._held}
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        escapes: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                key = node.id
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                key = node.attr
            else:
                continue
            if key not in held or key in escapes:
                continue
            parent = parents.get(node)
            if isinstance(parent, ast.Subscript) or (
                isinstance(parent, ast.Attribute) and parent.attr in MUTATORS
            ):
                continue  # data["x"] = ..., data.update(...): filling it, not passing it on
            if isinstance(parent, (ast.keyword, ast.Starred)):
                parent = parents.get(parent)
            if isinstance(parent, ast.Call) and node is not parent.func and kind_of(parent) == "external":
                continue
            escapes.add(key)
        for name, node, message in self._held:
            if name in escapes:
                yield node, message
