"""Rules of the proceeds journal in a store, on SQLite and PostgreSQL: a sale booked once and a
payout reference used once per payee whatever races, statements read from the market's view
as the journal used to compute them, and a journal whose snapshots do not grow with sales."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from eventsourcing.persistence import IntegrityError

from market.application import Marketplace
from market.domain.errors import PayoutAlreadyRecordedError, SaleAlreadyRecordedError
from market.domain.proceeds import (
    FARMERS,
    PAYOUT,
    Farm,
    FarmDetails,
    JournalEntry,
    RuleVersion,
    StatementRow,
    payable_account,
    payee_of,
    payout_id,
    proceeds_ledger_id,
    split_proceeds,
)

AIDER, FEE = "aider-field-programme", "ecosphere-fee"
PROJECT, OTHER_PROJECT = "KAP-AF-01", "VCS-1067"
RULE = RuleVersion(1, {AIDER: Decimal(25), FEE: Decimal(15), FARMERS: Decimal(60)},
                   datetime(2024, 1, 1, tzinfo=timezone.utc))
FARMS = [Farm.register(PROJECT, code, FarmDetails(f"Family {code}", Decimal(10), Decimal(ha)))
         for code, ha in (("F-1", "2"), ("F-2", "1"), ("F-3", "1"))]


@pytest.fixture
def app(database_url):
    market = Marketplace(database=database_url)
    try:
        yield market
    finally:
        market.close()


class Books:
    """The USD journal written straight to the store (no orders), remembering every entry."""

    def __init__(self, app: Marketplace):
        self.app = app
        self.entries: list[JournalEntry] = []

    def exists(self, aggregate_id) -> bool:
        return bool(self.app.recorder.select_events(aggregate_id, limit=1))

    def sell(self, order_id: str, amount: int, on: date, project: str = PROJECT,
             fee: int | None = None) -> None:
        journal = self.app.proceeds("USD")
        sale = journal.record_sale(order_id, amount, split_proceeds(amount, "USD", RULE, FARMS),
                                   fee, received_on=on, project=project, exists=self.exists)
        self.app.store.save(journal, sale)
        self.entries.append(sale.entry)

    def refund(self, order_id: str, on: date) -> None:
        journal, sale = self.app.proceeds("USD"), self.app.sale_proceeds("USD", order_id)
        self.entries.append(journal.record_refund(sale, on))
        self.app.store.save(journal, sale)

    def pay(self, recipient: str, farm_code: str | None, amount: int, on: date,
            reference: str) -> None:
        self.app.record_payout("USD", recipient, farm_code, amount, on, reference)
        account = payable_account(recipient, farm_code)
        self.entries.append(self.app.store.repository.get(payout_id("USD", account, reference)).entry)


def statement_as_before(entries, recipient=None, farm_code=None, start=None, end=None,
                        project=None) -> list[StatementRow]:
    """The statement as the journal computed it while it kept every entry: the rule the
    view's statement must still follow."""
    rows, owed = [], {}
    for entry in sorted(entries, key=lambda entry: entry.on):
        for posting in entry.postings:
            if (payee := payee_of(posting.account)) is None:
                continue
            owed[posting.account] = owed.get(posting.account, 0) - posting.amount
            if (recipient in (None, payee[0]) and farm_code in (None, payee[1])
                    and project in (None, entry.project)
                    and (start is None or start <= entry.on) and (end is None or entry.on <= end)):
                payout = entry.kind == PAYOUT
                rows.append(StatementRow(
                    entry.on, entry.kind, entry.reference, *payee,
                    allocated=0 if payout else -posting.amount,
                    paid_out=posting.amount if payout else 0,
                    owed=owed[posting.account], project=entry.project))
    return rows


MAY = {"start": date(2024, 5, 1), "end": date(2024, 5, 31)}


@pytest.mark.parametrize("filters", [
    {}, {"recipient": FARMERS}, {"recipient": FARMERS, "farm_code": "F-1"},
    {"farm_code": "F-2"}, {"recipient": AIDER}, MAY, {"project": PROJECT},
    {"project": OTHER_PROJECT, **MAY}, {"recipient": FARMERS, "farm_code": "F-1", **MAY},
    {"recipient": AIDER, "project": PROJECT}, {"start": date(2024, 6, 2)},
    {"recipient": "nobody"},
])
def test_a_statement_from_the_view_is_the_statement_the_journal_gave(app, filters):
    books = Books(app)
    # Sales of two projects, some on one day, one booked after a later-dated one...
    books.sell("order-1", 10000, date(2024, 4, 20))
    books.sell("order-2", 2000, date(2024, 5, 10))
    books.sell("order-3", 4000, date(2024, 5, 10), project=OTHER_PROJECT, fee=116)
    books.pay(FARMERS, "F-1", 2000, date(2024, 5, 31), "BCP-1")
    books.refund("order-2", date(2024, 6, 2))
    books.sell("order-4", 3000, date(2024, 5, 1), project=OTHER_PROJECT)
    books.pay(AIDER, None, 500, date(2024, 5, 10), "BCP-2")
    books.sell("order-5", 999, date(2024, 6, 2), fee=30)
    # ...and a refund after the farm was paid: it owes that back from its next sales.
    books.refund("order-1", date(2024, 6, 3))

    view = app.caught_up_view()

    assert view.proceeds_entries("USD") == books.entries
    assert view.statement("USD", **filters) == statement_as_before(books.entries, **filters)
    assert view.validate_balanced(app.proceeds("USD")) == []


def test_a_statement_lists_a_payees_movements_in_a_period_with_what_is_owed_after_each(app):
    books = Books(app)
    books.sell("order-1", 10000, date(2024, 4, 20))
    books.sell("order-2", 2000, date(2024, 5, 10))
    books.pay(FARMERS, "F-1", 2000, date(2024, 5, 31), "BCP-1")
    books.sell("order-3", 4000, date(2024, 6, 2))

    rows = app.caught_up_view().statement("USD", FARMERS, "F-1", start=date(2024, 5, 1),
                                          end=date(2024, 5, 31))

    assert rows == [
        StatementRow(date(2024, 5, 10), "sale", "order-2", FARMERS, "F-1", 600, 0, 3600,
                     PROJECT),
        StatementRow(date(2024, 5, 31), "payout", "BCP-1", FARMERS, "F-1", 0, 2000, 1600),
    ]


def test_a_statement_without_filters_lists_every_payee_but_no_cash_or_fees(app):
    Books(app).sell("order-1", 10000, date(2024, 5, 1), fee=300)

    rows = app.caught_up_view().statement("USD")

    assert {(row.recipient, row.farm_code) for row in rows} == {
        (AIDER, None), (FEE, None), (FARMERS, "F-1"), (FARMERS, "F-2"), (FARMERS, "F-3")}
    assert sum(row.allocated for row in rows) == 10000
    assert [row.farm_code for row in app.view.statement("USD", FARMERS)] == ["F-1", "F-2", "F-3"]
    assert app.view.statement("EUR") == []


def test_a_statement_runs_in_date_order_however_entries_were_recorded(app):
    books = Books(app)
    books.sell("late", 10000, date(2024, 6, 1))
    books.sell("early", 2000, date(2024, 5, 1))

    rows = app.caught_up_view().statement("USD", AIDER)

    assert [(row.reference, row.owed) for row in rows] == [("early", 500), ("late", 3000)]


def test_the_balance_check_reads_the_entries_the_journal_had_counted(app):
    books = Books(app)
    books.sell("order-1", 10000, date(2024, 5, 1))
    before = app.proceeds("USD")  # loaded, then the journal moves on
    books.sell("order-2", 10000, date(2024, 5, 2))

    assert app.view.validate_balanced(before) == []
    assert app.view.validate_balanced(app.proceeds("USD")) == []


def test_a_sale_cannot_be_booked_twice(app):
    books = Books(app)
    books.sell("order-7", 10000, date(2024, 5, 1))
    journal = app.proceeds("USD")
    allocations = split_proceeds(10000, "USD", RULE, FARMS)

    # A retry asks the store and is refused by name...
    with pytest.raises(SaleAlreadyRecordedError):
        journal.record_sale("order-7", 10000, allocations, exists=books.exists)
    # ...and one that asked before the first was saved is refused by the store, as a whole.
    with pytest.raises(IntegrityError):
        app.store.save(journal, journal.record_sale("order-7", 10000, allocations,
                                              exists=lambda _: False))
    assert app.proceeds("USD").owed(AIDER) == 2500
    assert len(app.caught_up_view().proceeds_entries("USD")) == 1


def test_a_payout_reference_cannot_be_used_twice_for_a_payee(app):
    Books(app).sell("order-1", 10000, date(2024, 5, 1))
    app.record_payout("USD", FARMERS, "F-1", 100, date(2024, 6, 1), "BCP-9")
    position = app.recorder.max_notification_id()

    with pytest.raises(PayoutAlreadyRecordedError):
        app.record_payout("USD", FARMERS, "F-1", 100, date(2024, 6, 2), "BCP-9")

    assert app.recorder.max_notification_id() == position
    app.record_payout("USD", FARMERS, "F-2", 100, date(2024, 6, 1), "BCP-9")  # another payee
    assert app.proceeds("USD").paid_out(FARMERS, "F-1") == 100


@pytest.mark.slow
def test_the_journal_is_snapshotted_and_its_snapshots_do_not_grow_with_sales(app):
    books = Books(app)

    for n in range(200):
        books.sell(f"order-{n}", 10000 + n, date(2024, 5, 1), fee=n % 3)

    snapshots = app.store.snapshots.recorder.select_events(proceeds_ledger_id("USD"))
    assert [snapshot.originator_version for snapshot in snapshots] == [100, 200]
    assert len(snapshots[1].state) <= len(snapshots[0].state) + 32  # larger totals only
    assert app.view.validate_balanced(app.proceeds("USD")) == []
    # Taken from the journal in hand at its save, the snapshot holds what a replay of every
    # event up to it holds.
    replayed = None
    for event in app.store.events.get(proceeds_ledger_id("USD"), lte=200):
        replayed = event.mutate(replayed)
    restored = app.mapper.to_domain_event(snapshots[1]).mutate(None)
    assert restored.version == replayed.version == 200
    assert vars(restored) == vars(replayed)
