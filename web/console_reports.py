"""What the operator console reads: dashboard figures, issued serial blocks, payees' balances,
statements as CSV, and pages of long tables. Plain values in, plain values out; no Flask."""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from typing import Sequence

from ledger.domain.accounts import INVENTORY
from ledger.audit.export import neutralise
from ledger.domain.serials import SerialBlock
from market.domain import money
from market.domain.proceeds import FARMERS, ProceedsLedger, StatementRow
from web.consistency import read_view

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    """One page of a longer list; ``number`` counts from 1."""

    items: Sequence
    number: int
    size: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number * self.size < self.total



def first_row(number: int, size: int = PAGE_SIZE) -> int:
    """The offset of page ``number``'s first row."""
    return (number - 1) * size


def page_of(rows: Sequence, number: int, size: int = PAGE_SIZE) -> Page:
    start = first_row(number, size)
    return Page(rows[start:start + size], number, size, len(rows))


def money_text(minor: int, currency: str) -> str:
    """``USD 12.50`` for 1250 minor units."""
    return money.Money.from_minor(minor, currency).display()


def tonnes_by_status(balances: Sequence[dict]) -> dict[str, int]:
    """Tonnes in the operator's inventory, reserved for orders, retired and cancelled."""
    totals = {"inventory": 0, "reserved": 0, "retired": 0, "cancelled": 0}
    for row in balances:
        if row["status"] == "held" and row["kind"] == INVENTORY:
            totals["inventory"] += row["quantity"]
        elif row["status"] in totals:
            totals[row["status"]] += row["quantity"]
    return totals


@dataclass(frozen=True)
class Payee:
    """What a recipient (or one farm of the farmers) was allocated, paid and is owed."""

    recipient: str
    farm_code: str | None
    allocated: int
    paid_out: int
    owed: int


def payees(journal: ProceedsLedger) -> list[Payee]:
    """Every payee of one currency's proceeds journal, farmers' farms with the rest, from
    its running totals (a refund lowers what was allocated, not what was paid out)."""
    return [Payee(recipient, farm_code, journal.allocated(recipient, farm_code),
                  journal.paid_out(recipient, farm_code), journal.owed(recipient, farm_code))
            for recipient, farm_code in journal.payees()]


def owed_to_farms(journal: ProceedsLedger) -> int:
    return sum(payee.owed for payee in payees(journal) if payee.recipient == FARMERS)


def issued_blocks(issuances: Sequence[dict], registry_id: str, country: str) -> list[dict]:
    """The project's issuance batches with their printed serial block and inventory part."""
    rows = []
    for row in issuances:
        if row["project"] != registry_id:
            continue
        block = SerialBlock(row["vintage"], row["batch"], row["first_serial"],
                            row["last_serial"], registry_id, country)
        rows.append({**row, "serial": block.serial, "quantity": block.quantity,
                     "to_inventory": block.quantity - row["buffer_quantity"]})
    return rows


STATEMENT_COLUMNS = ["currency", *(field.name for field in fields(StatementRow))]
_AMOUNTS = ("allocated", "paid_out", "owed")


def statement_csv(rows: Sequence[StatementRow], currency: str) -> str:
    """A statement as CSV with amounts in major units (``-12.50``), safe to open in a
    spreadsheet: a text cell (reference, payee, project) that would start a formula gets a
    leading apostrophe. Amounts and dates are ours, never formulas, so they stay numbers."""
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow(STATEMENT_COLUMNS)
    for row in rows:
        cells = [currency] + [
            money.Money.from_minor(value, currency).amount if name in _AMOUNTS else value
            for name, value in zip(STATEMENT_COLUMNS[1:], astuple(row))]
        writer.writerow(["" if cell is None else neutralise(cell) if isinstance(cell, str)
                         else str(cell) for cell in cells])
    return output.getvalue()


def dashboard_figures(market) -> dict:
    """The console's front page: what the registry holds, what the market owes."""
    view = read_view()
    owed = {}
    for code in money.CURRENCIES:
        journal = market.proceeds(code)
        if journal.has_entries:
            owed[code] = owed_to_farms(journal)
    return {
        "projects": len(view.projects()),
        "tonnes": tonnes_by_status(view.balances()),
        "sold": sum(listing.sold for listing in market.listings()),
        "awaiting_payment": view.order_states().get("reserved", 0),
        "pending_at_verra": len(view.pending_retirements()),
        "owed_to_farms": owed,
    }
