"""Refunds and disputes reverse what they must (the policy in README: money withdrawn from
every payee's allocation; credits the buyer still holds come back to the inventory; retired
credits cannot), the order book lists orders, and listings can be repriced. SQLite and
PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest


from market.application import Marketplace
from market.domain.listings import PriceTier
from market.domain.orders import FULFILLED, REFUNDED, IllegalTransitionError
from market.domain.payments import DISPUTE_LOST, REFUNDED as PAYMENT_REFUNDED, PaymentEvent
from market.domain.proceeds import FARMERS
from testbed.builders import claim
from tests.integration.market_scenario import (
    BUYER,
    OTHER_BUYER,
    Market,
    assert_sound,
    journal_entries,
    serial_numbers,
)
from tests.integration.market_scenario import market  # noqa: F401  (a pytest fixture)


def owed_total(app: Marketplace) -> int:
    return sum(-p.amount for entry in journal_entries(app) for p in entry.postings
               if p.account.startswith("payable:"))


def paid_order(market: Market, tonnes: int, **options) -> str:
    order_id = market.order(tonnes, **options)
    assert market.app.pay_offline(order_id) == "fulfilled"
    return order_id


def test_an_operator_refund_returns_the_money_the_allocation_and_the_credits(market):
    before = serial_numbers(market.held())
    order_id = paid_order(market, 9)
    assert owed_total(market.app) > 0

    summary = market.app.refund_order(order_id, "buyer cancelled the project")

    assert summary["state"] == REFUNDED
    assert market.app.ledger.get_account(BUYER).balance == 0
    assert serial_numbers(market.held()) == before  # the very serials are back on offer
    assert market.counters() == (500, 0, 0, 500)
    assert owed_total(market.app) == 0  # every payee's allocation withdrawn
    order = market.app.get_order(order_id)
    assert order.refund_id and "9 t recovered" in order.note
    assert_sound(market.app)


def test_a_refund_is_refused_when_the_buyer_has_retired_the_credits_unless_told_to_keep_them(
        market):
    order_id = paid_order(market, 6)
    market.app.ledger.retire(BUYER, claim("Acme"), quantity=2)
    position = market.position()

    with pytest.raises(IllegalTransitionError, match="no longer holds 2"):
        market.app.refund_order(order_id, "goodwill")
    assert market.position() == position  # nothing was written
    assert market.app.get_order(order_id).state == FULFILLED

    market.app.refund_order(order_id, "goodwill", recover_credits=False)
    assert market.app.get_order(order_id).state == REFUNDED
    assert market.app.ledger.get_account(BUYER).balance == 4  # credits stay: the platform absorbs it
    assert_sound(market.app)


def test_a_retire_at_once_order_cannot_recover_its_credits(market):
    order_id = paid_order(market, 3, retirement=claim("Acme"))
    with pytest.raises(IllegalTransitionError, match="retired for the buyer"):
        market.app.refund_order(order_id, "mistake")
    market.app.refund_order(order_id, "mistake", recover_credits=False)
    assert "3 t stay retired" in market.app.get_order(order_id).note
    assert owed_total(market.app) == 0
    assert_sound(market.app)


@pytest.mark.parametrize("kind", [PAYMENT_REFUNDED, DISPUTE_LOST])
def test_a_refund_or_lost_dispute_at_the_provider_recovers_what_the_buyer_still_holds(
        market, kind):
    order_id = paid_order(market, 8)
    market.app.ledger.open_account(OTHER_BUYER)
    market.app.ledger.transfer(BUYER, OTHER_BUYER, quantity=3)  # passed on: not recoverable
    order = market.app.get_order(order_id)

    outcome = market.app.handle_payment_event(PaymentEvent(
        f"evt_{kind}", kind, order.payment_id, None, order.total_minor, "USD", 0))

    assert "5 t recovered" in outcome and "3 t not recoverable" in outcome
    assert market.app.get_order(order_id).state == REFUNDED
    assert market.app.ledger.get_account(BUYER).balance == 0
    assert market.app.ledger.get_account(OTHER_BUYER).balance == 3
    assert market.counters() == (500, 0, 3, 497)
    assert owed_total(market.app) == 0
    assert_sound(market.app)


def test_a_refund_after_the_farms_were_paid_leaves_them_owing_it_to_their_next_sales(market):
    order_id = paid_order(market, 10)
    journal = market.app.proceeds("USD")
    owed = journal.owed(FARMERS, "F-002")
    market.app.record_payout("USD", FARMERS, "F-002", owed, market.clock.now.date(), "BCP-77")

    market.app.refund_order(order_id, "chargeback risk")

    assert market.app.proceeds("USD").owed(FARMERS, "F-002") == -owed
    assert_sound(market.app)


@pytest.mark.parametrize("state_maker", ["reserved", "refunded"])
def test_only_paid_or_fulfilled_orders_can_be_refunded(market, state_maker):
    order_id = market.order(2)
    if state_maker == "refunded":
        market.app.pay_offline(order_id)
        market.app.refund_order(order_id, "first")
    with pytest.raises(IllegalTransitionError, match="only paid or fulfilled"):
        market.app.refund_order(order_id, "again")


def test_a_refund_needs_a_reason(market):
    order_id = paid_order(market, 2)
    with pytest.raises(Exception, match="reason is needed"):
        market.app.refund_order(order_id, "   ")


def test_payment_cannot_start_for_an_order_that_is_not_reserved(market):
    order_id = paid_order(market, 2)
    with pytest.raises(IllegalTransitionError):
        market.app.start_payment(order_id)


def test_the_order_book_lists_filters_and_pages_orders(market):
    ids = [market.order(2) for _ in range(3)] + [market.order(2, buyer=OTHER_BUYER)]
    market.app.pay_offline(ids[0])
    view = market.app.caught_up_view()

    rows, total = view.orders(buyer_org=BUYER.title())
    assert total == 3 and {row["order_id"] for row in rows} == set(ids[:3])
    assert view.orders(state="fulfilled")[0][0]["order_id"] == ids[0]
    assert view.orders(query=ids[3][-6:].lower())[1] == 1
    first_page, total = view.orders(limit=2, offset=0)
    second_page, _ = view.orders(limit=2, offset=2)
    assert total == 4 and len(first_page) == 2
    assert {r["order_id"] for r in first_page + second_page} == set(ids)
    assert view.order_states() == {"fulfilled": 1, "reserved": 3}


def test_a_listing_can_be_repriced_and_orders_already_placed_keep_their_price(market):
    order_id = market.order(4)
    market.app.change_listing(market.listing_id, price_per_tonne=Decimal("20.00"),
                              tiers=[PriceTier(100, Decimal("19.00"))])

    assert market.app.get_order(order_id).unit_price == Decimal("18.75")
    later = market.app.get_order(market.order(4))
    assert later.unit_price == Decimal("20.00")
    assert market.app.quote(market.listing_id, tonnes=100).unit_price == Decimal("19.00")
    with pytest.raises(Exception, match="may not rise"):
        market.app.change_listing(market.listing_id, price_per_tonne=Decimal("20.00"),
                                  tiers=[PriceTier(100, Decimal("25.00"))])


def test_listings_are_read_again_only_when_the_store_has_moved_on(market):
    first = market.app.listings()
    assert market.app.listings()[0] is first[0]  # nothing new: the same copies, no reads
    market.order(3)
    fresh = market.app.listings()
    assert fresh[0] is not first[0]
    assert fresh[0].reserved == first[0].reserved + 3
