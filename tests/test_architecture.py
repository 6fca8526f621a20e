"""The shape of the house: who may import whom, and no import cycles.

Every import counts, including the ones inside functions: a cycle hidden by a function-local
import is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_INDEX = {"telegram", "apscheduler", "bot"}

# What each part of bot/ may import from bot/ (besides itself). "core" is the modules at the
# top of bot/ (config, types, state, batcher, services). The same rules are written out in
# each package's docstring.
CORE = "bot"
MAY_IMPORT: dict[str, set[str]] = {
    "bot.sandbox": set(),
    "bot.ops": {CORE, "bot.sources.registry"},
    "bot.sources": {CORE},
    "bot.digests": {CORE, "bot.telegram.render", "bot.telegram.callbacks"},
    "bot.telegram": {CORE, "bot.digests", "bot.sources", "bot.ops"},
    "bot.cli": {CORE, "bot.telegram", "bot.digests", "bot.sources", "bot.ops", "bot.sandbox"},
}
# Pure renderers: data in, Telegram HTML out; no database, operation or network code.
RENDERERS = ("bot.telegram.render", "bot.telegram.render_admin", "bot.digests.render")
RENDERERS_MAY_IMPORT = {
    "index",
    "bot.types",
    "bot.telegram.render",
    "bot.telegram.callbacks",
    "bot.digests.cadence",
}


def modules() -> dict[str, Path]:
    """Every module of bot/ and index/ by dotted name."""
    found = {}
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("index/**/*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except what sits under ``if TYPE_CHECKING:`` (never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in _nodes_with(child))
            continue
        yield node
        yield from _nodes(node)


def _nodes_with(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    yield from _nodes(node)


def imports(name: str, path: Path) -> Iterator[str]:
    """Modules ``name`` imports at run time, anywhere in the module (inside functions too),
    relative ones resolved; ``from m import y`` counts as ``m.y`` when that is a module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in _nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            yield from subs or [base]


MODULES = modules()


def internal(name: str) -> list[str]:
    """The bot/ and index/ modules ``name`` imports (packages stand for their __init__)."""
    return sorted({i for i in imports(name, MODULES[name]) if i in MODULES and i != name})


def _every_import(path: Path) -> Iterator[str]:
    """Absolute module names a file imports, type-checking-only imports included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_index_does_not_import_the_bot_layer() -> None:
    """Not even for type checking."""
    offenders = [
        f"{name}: {i}"
        for name, path in MODULES.items()
        if name.split(".")[0] == "index"
        for i in _every_import(path)
        if i.split(".")[0] in FORBIDDEN_IN_INDEX
    ]
    assert not offenders


def test_bot_imports_only_the_index_package() -> None:
    offenders = [
        f"{name}: {i}"
        for name, path in MODULES.items()
        if name.split(".")[0] == "bot"
        for i in imports(name, path)
        if i.startswith("index.")
    ]
    assert not offenders, "import the core as `from index import ...`"


def _owner(name: str) -> str:
    """The part of bot/ a module belongs to: a subpackage, or the core."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or f"{name}" in MAY_IMPORT else CORE


def _allowed(target: str, rules: set[str]) -> bool:
    if _owner(target) == CORE:
        return CORE in rules
    return any(target == r or target.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_package_imports_follow_its_rules(package: str) -> None:
    offenders = [
        f"{name} -> {target}"
        for name in MODULES
        if name == package or name.startswith(package + ".")
        for target in internal(name)
        if target.startswith("bot")
        and _owner(target) != package
        and not _allowed(target, MAY_IMPORT[package])
    ]
    assert not offenders


def test_core_modules_import_no_capability_but_its_stores() -> None:
    """The core may reach the stores it creates tables for, never handlers or the CLI."""
    offenders = [
        f"{name} -> {target}"
        for name in MODULES
        if _owner(name) == CORE and name.startswith("bot")
        for target in internal(name)
        if target.startswith(("bot.telegram", "bot.cli", "bot.sandbox"))
    ]
    assert not offenders


@pytest.mark.parametrize("renderer", RENDERERS)
def test_renderers_are_pure(renderer: str) -> None:
    names = set(imports(renderer, MODULES[renderer]))
    assert not {n for n in names if n.split(".")[0] in ("sqlalchemy", "httpx", "telegram")}
    offenders = [
        t
        for t in internal(renderer)
        if t.startswith("bot")
        and not any(t == r or t.startswith(r + ".") for r in RENDERERS_MAY_IMPORT)
    ]
    assert not offenders


def test_import_graph_has_no_cycle() -> None:
    graph = {name: [t for t in internal(name) if not name.startswith(t + ".")] for name in MODULES}
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        path.append(name)
        for target in graph[name]:
            visit(target)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


# index/fetch.py is being hardened (issue 12) right now; it is split there, not here.
WAIVED_LENGTH: set[str] = set()


def test_no_module_over_400_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > 400 and name not in WAIVED_LENGTH
    }
    assert not long
