"""Dependencies point one way, web -> market -> ledger: read from the imports with ``ast``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEDGER_ALLOWED = {"eventsourcing", "ledger"}
# PostgreSQL support is optional: only the modules that write its SQL (our table recorders,
# our event recorder, and reading many aggregates in one round trip) import it.
# Ed25519 signing comes from `cryptography`, confined to the audit's key and verifier modules.
LEDGER_ALLOWED_IN = {
    "ledger/adapters/sql_recorders.py": {"psycopg"},
    "ledger/adapters/batch_reads.py": {"psycopg"},
    "ledger/adapters/pg_recorder.py": {"psycopg"},
    "ledger/adapters/pg_store.py": {"psycopg"},
    "ledger/audit/keys.py": {"cryptography"},
    "ledger/audit/verifier.py": {"cryptography"},
}
MARKET_FORBIDDEN = {"flask", "marshmallow", "web"}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import; a relative import is its own package's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.partition(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = "." if node.level else node.module.partition(".")[0]
            found.append((node.lineno, package))
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_in(package: str):
    """(file relative to the project, line, top-level package) of every import in a package."""
    for path in modules_of(package):
        name = path.relative_to(ROOT).as_posix()
        for line, imported in imported_packages(path.read_text(encoding="utf-8")):
            yield name, line, package if imported == "." else imported


def violations(package: str, allowed) -> list[str]:
    return [f"{name}:{line} imports {imported}"
            for name, line, imported in imports_in(package) if not allowed(name, imported)]


def ledger_may_import(name: str, imported: str) -> bool:
    return (imported in sys.stdlib_module_names or imported in LEDGER_ALLOWED
            or imported in LEDGER_ALLOWED_IN.get(name, ()))


@pytest.mark.parametrize("package", ["ledger", "market"])
def test_the_rules_see_every_module_of_a_package(package):
    assert ROOT / package / "__init__.py" in modules_of(package)


def test_the_ledger_imports_only_the_standard_library_and_eventsourcing():
    found = violations("ledger", ledger_may_import)

    assert not found, "ledger/ may import only the standard library and eventsourcing:\n" + (
        "\n".join(found))


def test_nothing_in_the_ledger_imports_the_market_or_the_web():
    found = violations("ledger", lambda name, imported: imported not in {"market", "web"})

    assert not found, "ledger/ must not depend on market/ or web/:\n" + "\n".join(found)


def test_the_market_never_imports_flask_marshmallow_or_the_web():
    found = violations("market", lambda name, imported: imported not in MARKET_FORBIDDEN)

    assert not found, "market/ must not depend on the web layer:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, packages",
    [
        ("import flask", ["flask"]),
        ("import os.path, web.views as views", ["os", "web"]),
        ("from market.domain.orders import place_order", ["market"]),
        ("from . import serials", ["."]),
        ("def later():\n    from psycopg.sql import SQL", ["psycopg"]),
        ("try:\n    import stripe\nexcept ImportError:\n    pass", ["stripe"]),
    ],
)
def test_the_rules_find_every_kind_of_import(source, packages):
    assert [package for _, package in imported_packages(source)] == packages


@pytest.mark.parametrize(
    "name, imported, allowed",
    [
        ("ledger/domain/serials.py", "re", True),
        ("ledger/domain/serials.py", "eventsourcing", True),
        ("ledger/domain/serials.py", "ledger", True),
        ("ledger/domain/serials.py", "psycopg", False),
        ("ledger/adapters/sql_recorders.py", "psycopg", True),
        ("ledger/audit/keys.py", "cryptography", True),
        ("ledger/domain/serials.py", "cryptography", False),
        ("ledger/domain/serials.py", "market", False),
        ("ledger/domain/serials.py", "flask", False),
        ("ledger/domain/serials.py", "hypothesis", False),
    ],
)
def test_the_ledger_rule_allows_exactly_the_standard_library_and_eventsourcing(
    name, imported, allowed
):
    assert ledger_may_import(name, imported) is allowed


# Writing the read model belongs to the worker's projection; the command line may catch it up.
VIEW_WRITERS = {"caught_up_view", "catch_up", "apply", "flush"}


def view_writes(source: str) -> list[tuple[int, str]]:
    """(line, method) of every call of a method that writes the read model."""
    return [(node.lineno, node.func.attr) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in VIEW_WRITERS]


def test_no_web_module_writes_the_read_model():
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} calls {method}"
             for path in modules_of("web") if "cli" not in path.relative_to(ROOT).parts
             for line, method in view_writes(path.read_text(encoding="utf-8"))]

    assert not found, "web requests only read the view:\n" + "\n".join(found)


def test_the_rule_finds_a_web_module_catching_the_view_up():
    assert view_writes("def page():\n    view = market().caught_up_view()") == [
        (2, "caught_up_view")]
