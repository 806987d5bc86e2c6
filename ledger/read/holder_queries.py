"""Read-only queries for one account holder: the retirements made from its accounts.

A buyer organisation retires from its holding account, and an order that retires at once
retires from that order's escrow account (owned by the organisation); both count as its own.
They read the ledger view's tables (``ledger/read/view.py``) and change nothing.
"""

from __future__ import annotations

from ledger.domain.accounts import ESCROW

_OF_HOLDER = (
    "FROM kapok_retirements r JOIN kapok_accounts a ON a.name = r.account "
    "WHERE r.account = :account OR (a.kind = :escrow AND a.owner = :owner)"
)


def retirements_of(view, account: str, owner: str, limit: int = 50,
                   offset: int = 0) -> tuple[list[dict], int]:
    """The retirements from ``account`` or from escrow accounts ``owner`` owns, newest
    first: one page of rows (retirement_id, account, beneficiary, reason, quantity,
    retired_at) and how many there are in all."""
    params = {"account": account, "escrow": ESCROW, "owner": owner}
    total = view.recorder.query(f"SELECT COUNT(*) AS n {_OF_HOLDER}", params)[0]["n"]
    rows = view.recorder.query(
        "SELECT r.retirement_id, r.account, r.beneficiary, r.reason, r.quantity, r.retired_at, "
        f"r.registry_phase {_OF_HOLDER} ORDER BY r.position DESC LIMIT :limit OFFSET :offset",
        {**params, "limit": max(0, int(limit)), "offset": max(0, int(offset))})
    return [dict(row) for row in rows], int(total)
