"""What the pages read about mirrored projects (Verra is their registry of record): pending
retirements as operators work on them, reconciliation runs with what each difference led to,
and quarantined tonnes. Plain values in, plain values out; no Flask."""

from __future__ import annotations

from datetime import datetime, timezone

from ledger.domain.accounts import REGISTRY_QUARANTINE
from ledger.domain.verra import format_verra_serial
from ledger.read.registry_queries import registry_phases, retired_serials

# How each kind of difference of a reconciliation (ledger/usecases/reconciliation.py) reads.
DIFFERENCE_KINDS = {
    "retired_at_registry": "retired at Verra while Kapok held them",
    "pending_still_active": "pending retirement still active at Verra",
    "unknown_at_kapok": "at Verra, unknown to Kapok",
    "quantity_differs": "quantities differ",
    "missing_at_registry": "known to Kapok, missing from the export",
    "unreadable_row": "row of the export that could not be read",
}


def difference_action(difference: dict) -> str:
    """What the run did about one difference, or what is left to an operator."""
    kind = difference.get("kind")
    if kind == "retired_at_registry":
        held = difference.get("held_by") or []
        if not held:
            return "no Kapok account held them any more"
        return "; ".join(f"{holder['tonnes']:,} t of {holder['account']} "
                         f"{holder['action']}" for holder in held)
    if kind == "pending_still_active":
        return (f"retirement {difference.get('retirement_id')} pending since "
                f"{difference.get('pending_since')}: check it at Verra, then confirm or "
                "fail it")
    if kind == "unknown_at_kapok":
        return "nothing: import the export to record these serials"
    if kind == "unreadable_row":
        return f"nothing: line {difference.get('line')} refused ({difference.get('why')})"
    if kind == "quantity_differs" and difference.get("known"):
        return "nothing: Kapok knows " + ", ".join(difference["known"])
    return "nothing: check the project at Verra"


def described_checks(checks: list[dict]) -> list[dict]:
    """Reconciliation runs with each difference's kind in words and what was done."""
    return [check | {"differences": [difference | {
        "kind_text": DIFFERENCE_KINDS.get(difference.get("kind"), difference.get("kind")),
        "action": difference_action(difference)} for difference in check["differences"]]}
        for check in checks]


def last_checks(view, projects: list[str]) -> dict[str, dict | None]:
    """Each mirrored project's latest reconciliation run (None: never reconciled)."""
    found = {}
    for registry_id in projects:
        runs = described_checks(view.registry_checks(registry_id, limit=1))
        found[registry_id] = runs[0] if runs else None
    return found


def registry_blocks(view, registry_id: str, limit: int) -> list[dict]:
    """The serial ranges Verra's exports showed of a mirrored project, in the order recorded,
    each with its printed serial and tonnes."""
    return [row | {"serial": format_verra_serial(row["batch"], row["first_serial"],
                                                 row["last_serial"], row["tail"]),
                   "quantity": row["last_serial"] - row["first_serial"] + 1}
            for row in view.registry_ranges(registry_id, limit=limit)]


def quarantined(view) -> list[dict]:
    """Tonnes in the registry's quarantine, per project and vintage."""
    return [row for row in view.balances(account=REGISTRY_QUARANTINE)
            if row["quantity"] > 0]


def pending_rows(view, now: datetime | None = None) -> list[dict]:
    """Retirements pending at Verra, oldest first, with the serials they locked and their
    age in days."""
    now = now or datetime.now(timezone.utc)
    rows = view.pending_retirement_rows()
    serials = retired_serials(view, [row["retirement_id"] for row in rows])
    return [row | {"serials": serials.get(row["retirement_id"], []),
                   "age_days": (now - datetime.fromisoformat(row["retired_at"])).days}
            for row in rows]


def phase_of(retirement) -> dict | None:
    """Where a retirement stands at Verra, as ``registry_phases`` gives it (None: Kapok's own
    serials, final at once)."""
    if retirement.registry_phase is None:
        return None
    on = retirement.registry_date
    return {"phase": retirement.registry_phase, "serials": list(retirement.registry_serials),
            "date": on.isoformat() if on else None, "note": retirement.failure or None}


def with_phases(view, rows: list[dict]) -> list[dict]:
    """Retirement rows, each with ``phase``: where it stands at Verra, or None."""
    phases = registry_phases(view, [row["retirement_id"] for row in rows])
    return [row | {"phase": phases.get(row["retirement_id"])} for row in rows]
