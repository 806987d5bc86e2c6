"""Read-only queries of the public registry: retirements by anyone's search, tonnes per month.

They read the ledger view's tables (``ledger/read/view.py``) and change nothing. SQL is written
once for SQLite and PostgreSQL: ``:name`` placeholders, no ``%`` in the text itself.
"""

from __future__ import annotations

from collections import defaultdict

from ledger.domain.errors import InvalidSerialError
from ledger.domain.serials import SerialRange

# Ids of the retirements whose serials overlap :first..:last.
_RETIRED_IN_RANGE = (
    "SELECT h.reference FROM kapok_serial_history h WHERE h.event = 'retired' "
    "AND h.first_serial <= :last AND h.last_serial >= :first"
)


_DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")


# Ids of the retirements that retired serials of the project :project (or :only).
_RETIRED_OF_PROJECT, _RETIRED_OF_ONLY = (
    "SELECT h.reference FROM kapok_serial_history h "
    f"WHERE h.event = 'retired' AND h.project = {placeholder}"
    for placeholder in (":project", ":only"))


def search_retirements(view, text: str = "", project: str | None = None,
                       limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
    """Retirements, newest first, whose beneficiary contains ``text`` (any case), whose id
    or project is ``text``, or whose retired serials overlap ``text`` read as a serial, a
    range or a printed block serial; ``project`` narrows to one project. Returns one page of
    rows (each with ``projects``: the project vintages it retired) and the total count."""
    where, params = [], {}
    text = (text or "").strip()
    if text:
        matches = ["LOWER(r.beneficiary) LIKE :pattern ESCAPE '\\'", "r.retirement_id = :upper",
                   f"r.retirement_id IN ({_RETIRED_OF_PROJECT})"]
        params.update(pattern=f"%{_like_escaped(text.lower())}%", upper=text.upper(),
                      project=text.upper())
        serials = _serial_range(text)
        if serials is not None:
            matches.append(f"r.retirement_id IN ({_RETIRED_IN_RANGE})")
            params.update(first=serials.first, last=serials.last)
        where.append("(" + " OR ".join(matches) + ")")
    if project:
        where.append(f"r.retirement_id IN ({_RETIRED_OF_ONLY})")
        params["only"] = project.strip().upper()
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    total = view.recorder.query(f"SELECT COUNT(*) AS n FROM kapok_retirements r{condition}",
                                params)[0]["n"]
    rows = [dict(row) for row in view.recorder.query(
        "SELECT r.retirement_id, r.beneficiary, r.reason, r.quantity, r.retired_at, "
        f"r.registry_phase FROM kapok_retirements r{condition} ORDER BY r.position DESC "
        "LIMIT :limit OFFSET :offset", {**params, "limit": limit, "offset": offset})]
    projects = _retired_project_vintages(view, [row["retirement_id"] for row in rows])
    for row in rows:
        row["projects"] = projects.get(row["retirement_id"], [])
    return rows, int(total)


def in_list(values: list[str]) -> tuple[str, dict]:
    """The placeholders of an SQL ``IN (...)`` list of ``values``, and their parameters."""
    # Names of letters only: the PostgreSQL adapter reads ``:[a-z_]+``.
    names = {"id_" + str(index).translate(_DIGITS_AS_LETTERS): value
             for index, value in enumerate(values)}
    return ", ".join(":" + name for name in names), names


def _retired_project_vintages(view, retirement_ids: list[str]) -> dict[str, list[str]]:
    """``{retirement id: ["VCS-1067 2019", ...]}`` for the given retirements."""
    if not retirement_ids:
        return {}
    placeholders, params = in_list(retirement_ids)
    rows = view.recorder.query(
        "SELECT DISTINCT h.reference, h.project, h.vintage FROM kapok_serial_history h "
        f"WHERE h.event = 'retired' AND h.reference IN ({placeholders}) "
        "ORDER BY h.project, h.vintage", params)
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        found[row["reference"]].append(f"{row['project']} {row['vintage']}")
    return found


def tonnes_by_month(view) -> dict[str, list[tuple[str, int]]]:
    """Tonnes ``issued``, ``sold`` and ``retired`` per month (``YYYY-MM``), oldest first.

    Sold counts tonnes that left a seller's inventory for a buyer: received into a holding
    account from an inventory or an order's escrow, or retired out of escrow on the buyer's
    behalf. Issued includes the buffer pool's share, and a mirrored project's blocks in the
    month they were imported from its registry."""
    queries = {
        # Kapok's own issuances, and a mirrored registry's blocks as they are imported.
        "issued": "SELECT month, SUM(tonnes) AS tonnes FROM ("
                  "SELECT substr(issued_at, 1, 7) AS month, "
                  "last_serial - first_serial + 1 AS tonnes FROM kapok_issuances "
                  "UNION ALL SELECT substr(occurred_at, 1, 7), last_serial - first_serial + 1 "
                  "FROM kapok_serial_history WHERE event = 'imported') issued GROUP BY month",
        "sold": "SELECT substr(h.occurred_at, 1, 7) AS month, "
                "SUM(h.last_serial - h.first_serial + 1) AS tonnes "
                "FROM kapok_serial_history h JOIN kapok_accounts a ON a.name = h.account "
                "LEFT JOIN kapok_accounts c ON c.name = h.counterparty "
                "WHERE (h.event = 'transferred' AND a.kind = 'holding' "
                "AND c.kind IN ('inventory', 'escrow')) "
                "OR (h.event = 'retired' AND a.kind = 'escrow') "
                "GROUP BY substr(h.occurred_at, 1, 7)",
        # A retirement its registry of record refused gave its credits back.
        "retired": "SELECT substr(retired_at, 1, 7) AS month, SUM(quantity) AS tonnes "
                   "FROM kapok_retirements WHERE registry_phase IS NULL "
                   "OR registry_phase <> 'failed' GROUP BY substr(retired_at, 1, 7)",
    }
    # int(): PostgreSQL sums BIGINTs as NUMERIC.
    return {name: sorted((row["month"], int(row["tonnes"]))
                         for row in view.recorder.query(sql, {}))
            for name, sql in queries.items()}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _serial_range(text: str) -> SerialRange | None:
    try:
        return SerialRange.parse(text)
    except InvalidSerialError:
        return None
