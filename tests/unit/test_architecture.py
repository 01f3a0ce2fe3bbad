"""What may import what (STYLE.md): the store is the one port to the database.

Walks the imports of every module with `ast` (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "watchdog"
CORE = ("calendar", "durations", "domain", "clock", "timefmt", "i18n")


def imports_of(source: str, name: str, *, package: bool = False) -> set[str]:
    """Every module the source of module `name` (dotted, relative to watchdog/) imports, with
    relative imports resolved: `from ..store import schema` in engine.runner is
    watchdog.store.schema (read literally it was "store" and escaped every check)."""
    parts = ["watchdog", *name.split(".")] if name else ["watchdog"]
    here = parts if package else parts[:-1]  # the package the module lives in
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base:
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def modules() -> dict[str, set[str]]:
    """Module name (relative to watchdog/, dotted) -> every module it imports."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        source = path.read_text(encoding="utf-8")
        out[name] = imports_of(source, name, package=rel.name == "__init__")
    return out


MODULES = modules()


def ours(imported: set[str]) -> set[str]:
    return {m.removeprefix("watchdog.") for m in imported if m.startswith("watchdog.")}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("store")))
def test_the_store_imports_nothing_above_it(name: str) -> None:
    bad = {
        m
        for m in ours(MODULES[name])
        if m.split(".")[0] in ("engine", "sources", "reports", "outbox", "cli", "demo")
    }
    assert not bad, f"watchdog/{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("store")))
def test_only_the_store_sees_sql_and_tables(name: str) -> None:
    imported = MODULES[name]
    sql = {m for m in imported if m == "sqlalchemy" or m.startswith(("sqlalchemy.", "alembic"))}
    tables = {m for m in imported if m.startswith("watchdog.store.schema")}
    assert not sql, f"watchdog/{name} imports {sorted(sql)}: ask a watchdog.store function"
    assert not tables, f"watchdog/{name} sees the tables: ask a watchdog.store function"


@pytest.mark.parametrize("name", CORE)
def test_the_core_imports_only_the_core(name: str) -> None:
    bad = {m for m in ours(MODULES[name]) if m.split(".")[0] not in CORE}
    assert not bad, f"watchdog/{name} imports {sorted(bad)}"


def test_pure_rules_never_see_the_store() -> None:
    for name in ("engine.deadline", "engine.evaluate", "engine.recipients", "engine.rules"):
        bad = {m for m in ours(MODULES[name]) if m.startswith("store")}
        assert not bad, f"watchdog/{name} imports {sorted(bad)}"


def test_the_walk_sees_every_kind_of_import() -> None:
    """The checks above are only as good as this walk: absolute, inside a function, relative."""
    source = (
        "import sqlalchemy\n"
        "from watchdog.store import schema\n"
        "def f():\n"
        "    from alembic import command\n"
        "from ..store import schema as s2\n"
        "from . import rules\n"
        "from .deadline import timeline\n"
    )
    found = imports_of(source, "engine.runner")
    assert {"sqlalchemy", "alembic", "watchdog.store.schema", "watchdog.engine.rules"} <= found
    assert "watchdog.engine.deadline.timeline" in found
    assert "watchdog.store.db" in imports_of("from .db import open_database", "store", package=True)
    # and the package is really walked: the store and the engine are there
    assert {"store", "store.plans", "engine.runner", "cli"} <= set(MODULES)
