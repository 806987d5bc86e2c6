"""The proceeds journals in the read model: one row per posting, filled from the journals'
events, for statements, lists of entries and the auditor's balance check.

The journals themselves keep running totals only; this is where their history is read."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from typing import Any

from ledger.read.view import TABLES, LedgerView
from market.domain.money import CURRENCIES
from market.domain.proceeds import (
    PAYOUT,
    JournalEntry,
    Posting,
    ProceedsLedger,
    StatementRow,
    payee_of,
    proceeds_ledger_id,
    validate_balanced,
)

# ``version`` is the journal's version after the entry: its recording order in the journal.
PROCEEDS_TABLES = [
    """CREATE TABLE IF NOT EXISTS kapok_proceeds_postings (
        currency TEXT NOT NULL, version BIGINT NOT NULL, seq INTEGER NOT NULL,
        kind TEXT NOT NULL, reference TEXT NOT NULL, day TEXT NOT NULL, project TEXT,
        account TEXT NOT NULL, recipient TEXT, farm_code TEXT, amount BIGINT NOT NULL,
        PRIMARY KEY (currency, version, seq))""",
    """CREATE INDEX IF NOT EXISTS kapok_proceeds_postings_payee
        ON kapok_proceeds_postings (currency, recipient, farm_code)""",
]
INSERT_POSTING = (
    "INSERT INTO kapok_proceeds_postings VALUES (:currency, :version, :seq, :kind, :reference, "
    ":day, :project, :account, :recipient, :farm_code, :amount)"
)
_ENTRY_EVENTS = (ProceedsLedger.SaleRecorded, ProceedsLedger.RefundRecorded,
                 ProceedsLedger.PayoutRecorded)
_CURRENCY_OF = {proceeds_ledger_id(code): code for code in CURRENCIES}

# What is owed runs over every movement of the account, in date and then recording order;
# the period and project filters apply after, so ``owed`` counts the movements before them.
_STATEMENT = """
SELECT * FROM (
    SELECT day, kind, reference, recipient, farm_code, project, amount, version, seq,
           CAST(SUM(-amount) OVER (PARTITION BY account ORDER BY day, version, seq
                                   ROWS UNBOUNDED PRECEDING) AS BIGINT) AS owed
    FROM kapok_proceeds_postings
    WHERE currency = :currency AND recipient IS NOT NULL {payee}
) AS movements
WHERE 1 = 1 {period}
ORDER BY day, version, seq
"""
# The statement's optional conditions, each with the parameter that turns it on.
_PAYEE_FILTERS = (("recipient", " AND recipient = :recipient"),
                  ("farm_code", " AND farm_code = :farm_code"))
_PERIOD_FILTERS = (("project", " AND project = :project"), ("start", " AND day >= :start"),
                   ("end", " AND day <= :end"))


class ProceedsView(LedgerView):
    """The ledger's view with the proceeds journals' postings (the market's view adds the
    order book)."""

    tables = TABLES + PROCEEDS_TABLES

    def _translate(self, event, position: int, deltas: dict, accounts: dict):
        if not isinstance(event, _ENTRY_EVENTS):
            return super()._translate(event, position, deltas, accounts)
        entry: JournalEntry = event.entry
        statements = []
        for seq, posting in enumerate(entry.postings):
            recipient, farm_code = payee_of(posting.account) or (None, None)
            statements.append((INSERT_POSTING, {
                "currency": _CURRENCY_OF[event.originator_id],
                "version": event.originator_version, "seq": seq, "kind": entry.kind,
                "reference": entry.reference, "day": entry.on.isoformat(),
                "project": entry.project, "account": posting.account, "recipient": recipient,
                "farm_code": farm_code, "amount": posting.amount}))
        return statements

    def proceeds_entries(self, currency: str, up_to: int | None = None) -> list[JournalEntry]:
        """The journal's entries in recording order; ``up_to`` a version of the journal, the
        entries it had counted then."""
        sql = "SELECT * FROM kapok_proceeds_postings WHERE currency = :currency"
        params: dict[str, Any] = {"currency": currency}
        if up_to is not None:
            sql += " AND version <= :up_to"
            params["up_to"] = up_to
        rows = self.recorder.query(sql + " ORDER BY version, seq", params)
        return [_entry(list(postings)) for _, postings in groupby(rows, lambda r: r["version"])]

    def statement(self, currency: str, recipient: str | None = None,
                  farm_code: str | None = None, start: date | None = None,
                  end: date | None = None, project: str | None = None) -> list[StatementRow]:
        """Movements of payee accounts in date order (recording order within a day), with
        what is owed after each. None matches any recipient, farm, date or project; the
        period is inclusive, and ``owed`` counts the movements before it too (a project's
        statement shows sales and refunds of that project only: payouts are per payee)."""
        params: dict[str, Any] = {"currency": currency, "recipient": recipient,
                                  "farm_code": farm_code, "project": project,
                                  "start": start and start.isoformat(),
                                  "end": end and end.isoformat()}
        payee, period = ("".join(condition for name, condition in filters
                                 if params[name] is not None)
                         for filters in (_PAYEE_FILTERS, _PERIOD_FILTERS))
        rows = self.recorder.query(_STATEMENT.format(payee=payee, period=period), params)
        return [_statement_row(row) for row in rows]

    def validate_balanced(self, journal: ProceedsLedger) -> list[str]:
        """The auditor's check of a journal against the entries here (``validate_balanced``).
        Catches up first, so the view holds every entry the journal has counted."""
        self.catch_up()
        entries = self.proceeds_entries(journal.currency, up_to=journal.version)
        return validate_balanced(journal, entries)


def _entry(rows: list) -> JournalEntry:
    first = rows[0]
    return JournalEntry(first["kind"], first["reference"], date.fromisoformat(first["day"]),
                        tuple(Posting(row["account"], row["amount"]) for row in rows),
                        first["project"])


def _statement_row(row: Any) -> StatementRow:
    # A refund withdraws an allocation: it shows as a negative allocation, not a payout.
    payout = row["kind"] == PAYOUT
    return StatementRow(
        date.fromisoformat(row["day"]), row["kind"], row["reference"], row["recipient"],
        row["farm_code"], allocated=0 if payout else -row["amount"],
        paid_out=row["amount"] if payout else 0, owed=row["owed"], project=row["project"])
