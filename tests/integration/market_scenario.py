"""The market scenario the integration tests share: the demo registry with a benefit rule,
three farms and one listing, a clock the test moves, and the audits every scenario must leave
clean."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledger.demo import INVENTORY, demo_steps
from ledger.audit.invariants import validate
from ledger.domain.serials import SerialBlock
from ledger.read.replay import replay
from market.application import Marketplace
from market.domain.listings import validate_listing
from market.domain.orders import RESERVED
from market.domain.payments import SUCCEEDED, PaymentEvent
from market.domain.proceeds import FARMERS, FarmDetails
from market.domain.reservations import validate_holds
from market.read.listing_audit import listing_violations

PROJECT, VINTAGE = "KAP-AF-01", 2022
HELD = 10_200  # the demo issues 12,000 t of this vintage; 15% go to the buffer pool
PRICE = Decimal("18.75")
AIDER, FEE = "aider-field-programme", "ecosphere-fee"
SHARES = {FARMERS: 60, AIDER: 25, FEE: 15}
HECTARES = {"F-001": Decimal("3"), "F-002": Decimal("5.5"), "F-003": Decimal("1.25")}
RULE_FROM = datetime(2026, 1, 1, tzinfo=timezone.utc)
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
BUYER, OTHER_BUYER = "acme-carbon", "globex-carbon"


class Clock:
    """The marketplace's time, moved by the test."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass
class Market:
    app: Marketplace
    clock: Clock
    listing_id: str

    def order(self, tonnes: int, buyer: str = BUYER, **options) -> str:
        return self.app.place_order(self.listing_id, tonnes, buyer.title(), buyer,
                                    **options)["order_id"]

    def held(self, account: str = INVENTORY) -> list[SerialBlock]:
        return [b for b in self.app.ledger.get_account(account).blocks
                if (b.project, b.vintage) == (PROJECT, VINTAGE)]

    def counters(self) -> tuple[int, int, int, int]:
        listing = self.app.get_listing(self.listing_id)
        return listing.on_offer, listing.reserved, listing.sold, listing.available

    def succeeded(self, order_id: str, event_id: str | None = None,
                  amount_minor: int | None = None) -> str:
        """Delivers the provider's 'payment succeeded' for an order whose payment started."""
        order = self.app.get_order(order_id)
        return self.app.handle_payment_event(PaymentEvent(
            event_id or f"evt_{order.payment_id}", SUCCEEDED, order.payment_id, order.order_id,
            order.total_minor if amount_minor is None else amount_minor, order.currency, 0))

    def position(self) -> int:
        return self.app.recorder.max_notification_id() or 0


def seed_market(app: Marketplace, on_offer: int = 500, minimum_quantity: int = 2) -> str:
    """The demo registry, a 60/25/15 benefit rule, three farms and one listing; its id."""
    for _, step in demo_steps(app.ledger):
        step()
    app.set_benefit_rule(PROJECT, SHARES, effective_from=RULE_FROM)
    for code, hectares in HECTARES.items():
        app.register_farm(PROJECT, code, FarmDetails(f"Family {code}", Decimal(20), hectares))
    return app.create_listing(PROJECT, VINTAGE, INVENTORY, PRICE, "USD", on_offer,
                              minimum_quantity=minimum_quantity)["listing_id"]


def journal_entries(app: Marketplace) -> list:
    """The USD journal's entries, from the market's view (the journal keeps totals only)."""
    return app.caught_up_view().proceeds_entries("USD")


def proceeds_problems(app: Marketplace) -> list[str]:
    return app.view.validate_balanced(app.proceeds("USD"))


def serial_numbers(blocks) -> set[int]:
    return {n for block in blocks for n in range(block.first, block.last + 1)}


def assert_sound(app: Marketplace) -> None:
    """The audits a scenario must leave clean: the registry replayed from its events, the
    proceeds journal, every listing's counters, tonnes in escrow equal to those reserved, and
    the order book showing each order as the order itself does."""
    state = replay(app)
    assert validate(state) == []
    assert proceeds_problems(app) == []
    listings = app.listings()
    assert [problem for listing in listings for problem in validate_listing(listing)] == []
    assert state.totals_by_status().get("reserved", 0) == sum(l.reserved for l in listings)
    assert listing_violations(app) == []
    # Pages of orders are read from the order book alone, so it must carry every field.
    rows, _ = app.caught_up_view().orders(limit=10**6)
    for row in rows:
        summary = app.order_summary(app.get_order(row["order_id"]))
        assert {field: row[field] for field in summary} == summary
    # Each organisation's holds count exactly its reserved orders.
    reserved: dict[str, dict[str, int]] = {row["buyer_org"]: {} for row in rows}
    for row in rows:
        if row["state"] == RESERVED:
            reserved[row["buyer_org"]][row["order_id"]] = row["tonnes"]
    for organisation, orders in reserved.items():
        assert validate_holds(app.reserved_by(organisation), orders) == []


@pytest.fixture
def market(database_url):
    """The scenario on the test's store (SQLite, then PostgreSQL), with a clock of its own."""
    clock = Clock()
    app = Marketplace(database=database_url, clock=clock)
    try:
        yield Market(app, clock, seed_market(app))
    finally:
        app.close()
