"""Dependencies point one way, web -> market -> ledger, and inward to each package's domain;
bench/ and tests/ share code only through testbed/. Read from the imports with ``ast``."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
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
    "ledger/audit/verify_retirement.py": {"cryptography"},
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


# --- layers inside the packages, by module --------------------------------------------------

# Where a rule is broken on purpose: module -> {imported module: why}.
LAYER_EXCEPTIONS: dict[str, dict[str, str]] = {}
DOMAIN_MAY_IMPORT = {
    "ledger/domain": ("eventsourcing.domain", "ledger.domain"),
    "market/domain": ("eventsourcing.domain", "ledger.domain", "market.domain"),
}
NOT_FROM_A_DOMAIN = ("ledger.adapters", "ledger.read", "ledger.audit", "ledger.application",
                     "market.adapters", "market.read", "market.application")


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of everything imported; ``from a.b import c`` gives ``a.b.c`` (``c``
    may be a module), and a relative import is resolved from ``package``, the importer's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{node.module}" if node.module else parent
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def within(module: str, prefixes) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


@functools.cache
def module_imports(folder: str) -> tuple[tuple[str, int, str], ...]:
    """(file relative to the project, line, dotted name) of every import under ``folder``."""
    found = []
    for path in modules_of(folder):
        name = path.relative_to(ROOT).as_posix()
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        found += [(name, line, imported) for line, imported
                  in imported_modules(path.read_text(encoding="utf-8"), package)]
    return tuple(found)


def layer_violations(folders, forbidden) -> list[str]:
    """Every import under ``folders`` for which ``forbidden(file, module)`` holds, unless
    LAYER_EXCEPTIONS lets that file import that module."""
    return [f"{name}:{line} imports {imported}"
            for folder in folders for name, line, imported in module_imports(folder)
            if forbidden(name, imported)
            and not within(imported, LAYER_EXCEPTIONS.get(name, {}))]


def outside_the_domain(name: str, imported: str) -> bool:
    allowed = next(modules for folder, modules in DOMAIN_MAY_IMPORT.items()
                   if name.startswith(folder + "/"))
    return not (imported.partition(".")[0] in sys.stdlib_module_names
                or within(imported, allowed))


@pytest.mark.parametrize("folder", ["ledger/domain", "ledger/read", "ledger/audit",
                                    "market/domain", "identity", "documents", "web", "tests",
                                    "bench", "testbed"])
def test_the_layer_rules_see_every_module_of_a_folder(folder):
    assert ROOT / folder / "__init__.py" in modules_of(folder)


def test_the_ledger_domain_imports_only_the_standard_library_eventsourcing_domain_and_itself():
    found = layer_violations(["ledger/domain"], outside_the_domain)

    assert not found, "ledger/domain/ imports beyond its layer:\n" + "\n".join(found)


def test_the_market_domain_imports_only_the_standard_library_eventsourcing_and_the_domains():
    found = layer_violations(["market/domain"], outside_the_domain)

    assert not found, "market/domain/ imports beyond its layer:\n" + "\n".join(found)


def test_no_domain_imports_adapters_the_read_side_or_an_application():
    found = layer_violations(["ledger/domain", "market/domain"],
                             lambda name, imported: within(imported, NOT_FROM_A_DOMAIN))

    assert not found, "a domain depends on an outer layer:\n" + "\n".join(found)


def test_the_ledger_read_side_and_audit_never_import_the_ledger_application():
    found = layer_violations(["ledger/read", "ledger/audit"],
                             lambda name, imported: within(imported, ["ledger.application"]))

    assert not found, "ledger/read/ and ledger/audit/ serve the application:\n" + "\n".join(found)


def test_identity_and_documents_never_import_the_web():
    found = layer_violations(["identity", "documents"],
                             lambda name, imported: within(imported, ["web"]))

    assert not found, "identity/ and documents/ must not depend on web/:\n" + "\n".join(found)


def test_the_web_never_imports_the_command_line():
    # The command line may import anything; nothing imports it back.
    found = layer_violations(["web"], lambda name, imported: within(imported, ["cli"]))

    assert not found, "web/ must not depend on cli/:\n" + "\n".join(found)


def test_tests_and_benchmarks_share_code_only_through_the_testbed():
    found = layer_violations(["tests"], lambda name, imported: within(imported, ["bench"]))
    found += layer_violations(["bench"], lambda name, imported: within(imported, ["tests"]))

    assert not found, "tests/ and bench/ import each other:\n" + "\n".join(found)


def test_the_testbed_never_imports_tests_or_benchmarks():
    found = layer_violations(["testbed"],
                             lambda name, imported: within(imported, ["tests", "bench"]))

    assert not found, "testbed/ must stand on its own:\n" + "\n".join(found)


def module_level_imports(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of what importing the module imports: not what a function
    imports when it is called."""
    found = []

    def visit(node) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.partition(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.lineno, node.module.partition(".")[0]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def development_extras() -> set[str]:
    """The packages of the ``dev`` extra, as import names are spelled (lower case, ``_``)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]["dev"]
    return {re.match(r"[A-Za-z0-9_.-]+", extra).group().lower().replace("-", "_")
            for extra in extras}


def test_the_packaged_testbed_imports_without_the_development_extras():
    extras = development_extras()
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} imports {imported}"
             for path in modules_of("testbed")
             for line, imported in module_level_imports(path.read_text(encoding="utf-8"))
             if imported.lower() in extras]

    assert not found, "testbed/ is installed without the dev extra:\n" + "\n".join(found)


def test_only_what_importing_a_module_runs_counts_as_its_import():
    source = ("import flask\nclass A:\n    import re\n"
              "def later():\n    import pytest\nif True:\n    from os import path")
    assert module_level_imports(source) == [(1, "flask"), (3, "re"), (7, "os")]


def is_a_test_module(module: str) -> bool:
    """Whether ``module`` (or the module a name is imported from) is a ``test_*`` module of
    tests/: pytest collects its tests, so what others need lives in a shared module."""
    return module.startswith("tests.") and any(
        part.startswith("test_") for part in module.split(".")[1:])


def test_no_test_module_imports_another_test_module():
    found = layer_violations(["tests"], lambda name, imported: is_a_test_module(imported))

    assert not found, "share through a helper module, not a test module:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, package, modules",
    [
        ("import os.path, web.views as views", "ledger.domain", ["os.path", "web.views"]),
        ("from ledger.application import Ledger", "web", ["ledger.application.Ledger"]),
        ("from ledger import application", "web", ["ledger.application"]),
        ("from . import serials", "ledger.domain", ["ledger.domain.serials"]),
        ("from .serials import merge", "ledger.domain", ["ledger.domain.serials.merge"]),
        ("from ..read import replay", "ledger.domain", ["ledger.read.replay"]),
        ("def later():\n    from bench.http_load import wrk", "tests", ["bench.http_load.wrk"]),
    ],
)
def test_the_layer_rules_name_every_import_in_full(source, package, modules):
    assert [module for _, module in imported_modules(source, package)] == modules


@pytest.mark.parametrize(
    "name, imported, forbidden",
    [
        ("ledger/domain/serials.py", "dataclasses.dataclass", False),
        ("ledger/domain/serials.py", "eventsourcing.domain.Aggregate", False),
        ("ledger/domain/serials.py", "ledger.domain.errors.InvalidCommandError", False),
        ("ledger/domain/serials.py", "eventsourcing.persistence.Transcoding", True),
        ("ledger/domain/serials.py", "ledger.application.Ledger", True),
        ("ledger/domain/serials.py", "ledger.domainish", True),
        ("ledger/domain/serials.py", "market.domain.orders", True),
        ("market/domain/orders.py", "ledger.domain.ids.named_id", False),
        ("market/domain/orders.py", "ledger.read.view", True),
    ],
)
def test_a_domain_may_import_exactly_the_standard_library_eventsourcing_domain_and_domains(
    name, imported, forbidden
):
    assert outside_the_domain(name, imported) is forbidden


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
