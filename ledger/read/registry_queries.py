"""Read-only queries about mirrored projects for the pages that show them: where retirements
stand at their registry of record, the serials they locked, and reconciliation runs a page at
a time. They read the ledger view's tables (``ledger/read/view.py``) and change nothing."""

from __future__ import annotations

from collections import defaultdict

from ledger.read.public_registry import in_list
from ledger.read.view import registry_check



def registry_phases(view, retirement_ids: list[str]) -> dict[str, dict]:
    """``{retirement id: {phase, serials, date, note}}`` for those of the given retirements
    that retired mirrored serials (Kapok's own have no phase and are left out)."""
    if not retirement_ids:
        return {}
    placeholders, params = in_list(retirement_ids)
    rows = view.recorder.query(
        "SELECT retirement_id, registry_phase, registry_serials, registry_date, registry_note "
        f"FROM kapok_retirements WHERE retirement_id IN ({placeholders}) "
        "AND registry_phase IS NOT NULL", params)
    return {row["retirement_id"]: {"phase": row["registry_phase"],
                                   "serials": (row["registry_serials"] or "").split(),
                                   "date": row["registry_date"], "note": row["registry_note"]}
            for row in rows}


def retired_serials(view, retirement_ids: list[str]) -> dict[str, list[str]]:
    """``{retirement id: [printed serial of each block it retired]}``."""
    if not retirement_ids:
        return {}
    placeholders, params = in_list(retirement_ids)
    rows = view.recorder.query(
        "SELECT reference, serial FROM kapok_serial_history WHERE event = 'retired' "
        f"AND reference IN ({placeholders}) ORDER BY position, seq", params)
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        found[row["reference"]].append(row["serial"])
    return found


def registry_checks_page(view, limit: int, offset: int = 0) -> tuple[list[dict], int]:
    """Reconciliation runs of every mirrored project, newest first: one page of them, with
    their differences, and how many there are."""
    total = view.recorder.query("SELECT COUNT(*) AS n FROM kapok_registry_checks", {})[0]["n"]
    rows = view.recorder.query(
        "SELECT * FROM kapok_registry_checks ORDER BY position DESC LIMIT :limit "
        "OFFSET :offset", {"limit": max(0, int(limit)), "offset": max(0, int(offset))})
    return [registry_check(row) for row in rows], int(total)
