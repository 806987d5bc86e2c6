"""SQL text is written in the code, never built from values: values go to the database as
parameters. Read from the source with ``ast``.

An f-string, a ``%`` format or a ``str.format`` whose text reads as SQL may put in only names
of module constants (UPPER_CASE) and what ``COMPOSED`` lists: identifiers and fragments of SQL
written in the code, each with the reason it is one. Anything new fails here: send the value
as a parameter, or list the identifier with its reason. psycopg's ``SQL.format`` writes any
argument that is not ``SQL``, ``Identifier`` or ``Placeholder`` in as a ``Literal``, so only
those go into it; ``Literal`` itself and psycopg's client-side binding cursors (which write
the values into the text) are not used at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "market", "identity", "web", "cli")

# Text that reads as SQL: a keyword in capitals, a placeholder (``:name``, ``%s``,
# ``%(name)s``), or a quote next to what is put in (a value written in as a literal).
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|DROP|CREATE|FROM|WHERE|VALUES|SET|BEGIN"
                  r"|COMMIT|AND|OR|JOIN|LIMIT)\b|(?<=[\s(,=]):[A-Za-z_]\w*|%(\(\w+\))?[sb]")
_QUOTED = re.compile(r"['\"]$")
_CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")
_PSYCOPG_COMPOSABLE = {"SQL", "Identifier", "Placeholder"}
_NEVER = {"Literal", "ClientCursor", "AsyncClientCursor", "mogrify"}

# (module, what is put in): why it is not a value.
COMPOSED = {
    ("ledger/adapters/sql_recorders.py", "name"):
        "a table or index name, read from the code's own CREATE statements",
    ("ledger/adapters/sql_recorders.py", "self.blob_type"):
        "the dialect's binary column type, BLOB or BYTEA",
    ("ledger/adapters/sql_recorders.py", "self.tracking_table"):
        "eventsourcing's tracking table, from configuration, quoted as an identifier",
    ("ledger/read/view.py", "table"):
        "the events table, from configuration, quoted as an identifier by the recorder",
    ("ledger/read/view.py", "column"):
        "the events table's position column: rowid (SQLite) or notification_id",
    ("ledger/read/view.py", "' AND '.join(where)"): "conditions written in the method",
    ("ledger/read/view.py", "events"): "the FROM and WHERE clauses of _events_filter",
    ("ledger/read/public_registry.py", "placeholder"): "the name of a placeholder",
    ("ledger/read/public_registry.py", "' AND '.join(where)"):
        "conditions written in the function",
    ("ledger/read/public_registry.py", "condition"): "the WHERE clause of those conditions",
    ("ledger/read/public_registry.py", "placeholders"):
        "one placeholder per retirement id (in_list: names of letters only)",
    ("ledger/read/registry_queries.py", "placeholders"):
        "one placeholder per retirement id (in_list: names of letters only)",
    ("market/read/view.py", "clause"): "conditions written in the method",
    ("market/read/proceeds_view.py", "payee"): "conditions from _PAYEE_FILTERS",
    ("market/read/proceeds_view.py", "period"): "conditions from _PERIOD_FILTERS",
}


def module_constants(tree: ast.Module) -> dict[str, str]:
    """The module's names bound once, at its top level, to a string constant."""
    found: dict[str, str] = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    return found


def composable_names(function: ast.AST) -> set[str]:
    """Names a function binds to psycopg's ``SQL(...)``, ``Identifier(...)`` or
    ``Placeholder(...)``, as ``a, b = Identifier(x), Identifier(y)`` does."""
    names = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (zip(target.elts, node.value.elts)
                     if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                     else [(target, node.value)])
            names |= {name.id for name, value in pairs
                      if isinstance(name, ast.Name) and _is_composable(value, set())}
    return names


def _is_composable(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    if not isinstance(node, ast.Call):
        return False
    if isinstance(node.func, ast.Name):
        return node.func.id in _PSYCOPG_COMPOSABLE
    # SQL(...).format(...): its own arguments are checked where it stands
    return (isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _is_psycopg_sql(node.func.value))


def _is_psycopg_sql(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "SQL")


def _names_a_writer_of_values(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return any(alias.name in _NEVER for alias in node.names)
    return getattr(node, "id", None) in _NEVER or getattr(node, "attr", None) in _NEVER


def _composed(node: ast.AST, constants: dict[str, str]):
    """(text, what is put in) if ``node`` composes text: an f-string, ``text % x`` or
    ``text.format(...)`` (text None when ``node`` is psycopg's ``SQL.format``; "" when the
    receiver is not a constant, which is read as SQL)."""
    if isinstance(node, ast.JoinedStr):
        text, put = "", []
        for part in node.values:
            if isinstance(part, ast.Constant):
                text += part.value
            else:
                quoted = bool(_QUOTED.search(text))
                put.append((part.value, quoted or part.conversion == ord("r")))
                text += "{}"
        return text, put
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
        values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return node.left.value, [(value, False) for value in values]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"):
        receiver = node.func.value
        put = [(value, False) for value in [*node.args, *(k.value for k in node.keywords)]]
        if _is_psycopg_sql(receiver):
            return None, put
        if isinstance(receiver, ast.Constant) and isinstance(receiver.value, str):
            return receiver.value, put
        if isinstance(receiver, ast.Name) and receiver.id in constants:
            return constants[receiver.id], put
        return "", put
    return None


def problems_in(source: str, module: str) -> list[str]:
    """Each place in ``source`` where SQL text is composed from something not allowed."""
    tree = ast.parse(source)
    constants = module_constants(tree)
    found = []
    functions = [tree] + [node for node in ast.walk(tree)
                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    seen = set()
    for function in reversed(functions):  # innermost first: each node judged once
        names = composable_names(function)
        for node in ast.walk(function):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if _names_a_writer_of_values(node):
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)} writes values in")
                continue
            composed = _composed(node, constants)
            if composed is None:
                continue
            text, put = composed
            for value, quoted in put:
                expression = ast.unparse(value)
                if text is None:  # psycopg's SQL.format
                    allowed = _is_composable(value, names)
                elif text and not _SQL.search(text):
                    continue
                else:
                    allowed = not quoted and (
                        _CONSTANT.fullmatch(expression) is not None
                        or (module, expression) in COMPOSED)
                if not allowed:
                    found.append(f"{module}:{value.lineno}: {expression} put into SQL text")
    return found


def test_sql_text_is_composed_only_from_constants_and_identifiers():
    found = [problem for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             for problem in problems_in(path.read_text(encoding="utf-8"),
                                        path.relative_to(ROOT).as_posix())]

    assert not found, "values go as parameters, not in SQL text:\n" + "\n".join(found)


def test_every_listed_composition_is_still_there():
    # A listed entry the code no longer has would let a value of the same name in unseen.
    sources = {module: (ROOT / module).read_text(encoding="utf-8")
               for module, _expression in COMPOSED}
    gone = [f"{module}: {expression}" for module, expression in COMPOSED
            if not any(ast.unparse(node) == expression
                       for node in ast.walk(ast.parse(sources[module])))]

    assert not gone, "listed in COMPOSED but not in the code:\n" + "\n".join(gone)


@pytest.mark.parametrize("source", [
    'cursor.execute(f"SELECT * FROM t WHERE name = \'{name}\'")',
    'cursor.execute(f"SELECT * FROM t WHERE id = {account_id}")',
    'query(f"DELETE FROM t WHERE id IN ({ids})", {})',
    'sql = "UPDATE t SET x = %s" % value',
    'sql = "INSERT INTO t VALUES ({})".format(value)',
    'sql = "INSERT INTO t VALUES ({v})".format(v=value)',
    'sql = TEMPLATE.format(value)',
    'sql = f"{key} >= :first"',
    'sql = f"SELECT * FROM t WHERE x = \'{CONSTANT}\'"',
    'sql = f"SELECT {CONSTANT!r} FROM t"',
    'SQL("SELECT * FROM t WHERE id = {}").format(value)',
    'SQL("SELECT * FROM {}").format(Literal(value))',
    'from psycopg.sql import Literal',
    'cursor = psycopg.ClientCursor(connection)',
])
def test_the_check_finds_a_value_written_into_sql(source):
    assert problems_in(source, "ledger/example.py")


@pytest.mark.parametrize("source", [
    'cursor.execute("SELECT * FROM t WHERE name = :name", {"name": name})',
    'cursor.execute(f"SELECT COUNT(*) {_OF_HOLDER}", params)',
    'SQL("SELECT * FROM {0}.{1}").format(Identifier(schema), Identifier(table))',
    'def f():\n    s, t = Identifier(a), Identifier(b)\n    SQL("SELECT * FROM {}.{}").format(s, t)',
    'log.info(f"{count} events applied")',
    'MESSAGE = "{} a minute at most"\nMESSAGE.format(limit)',
])
def test_the_check_lets_constants_and_identifiers_through(source):
    assert problems_in(source, "ledger/example.py") == []
