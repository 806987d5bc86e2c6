"""Payment events in any order, checked against their order (the policy in README): a refund
or lost dispute that comes before the payment's success is applied when it settles; a
dispute that opens, or closes won, changes nothing but a flag; a partial refund moves that
money and no more tonnes than it pays for; an event that is not its order's changes nothing
and is shown to operators. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from market.usecases.payments import MISMATCH
from market.domain.orders import FULFILLED, REFUNDED, RESERVED
from market.domain.payments import (
    DISPUTE_LOST,
    DISPUTE_OPENED,
    DISPUTE_WON,
    REFUNDED as PAYMENT_REFUNDED,
    SUCCEEDED,
    PaymentEvent,
)
from tests.integration.market_scenario import BUYER, Market, assert_sound, journal_entries
from tests.integration.market_scenario import market  # noqa: F401  (a pytest fixture)

TOTAL_8_T = 15_000  # 8 t at USD 18.75, in cents


def started(market: Market, tonnes: int = 8) -> dict:
    """A reserved order whose payment has started (it has a payment id)."""
    order_id = market.order(tonnes)
    return market.app.start_payment(order_id)


def report(market: Market, order: dict, kind: str, amount: int, event_id: str, *,
           name_order: bool = False, payment_id: str | None = None,
           currency: str = "USD") -> str:
    """The provider's event about ``order``'s payment; refunds and disputes name only it."""
    return market.app.handle_payment_event(PaymentEvent(
        event_id, kind, payment_id or order["payment_id"],
        order["order_id"] if kind == SUCCEEDED or name_order else None, amount, currency, 0))


def paid(market: Market, order: dict, event_id: str = "evt_paid") -> str:
    return report(market, order, SUCCEEDED, order["amount_minor"], event_id)


def refunded_to_payees(market: Market, order_id: str) -> int:
    """What the journal's refunds of an order withdrew from its payees, farms included."""
    return sum(p.amount for entry in journal_entries(market.app)
               if entry.kind == "refund" and entry.reference == order_id
               for p in entry.postings if p.account.startswith("payable:"))


@pytest.mark.parametrize("kind", [PAYMENT_REFUNDED, DISPUTE_LOST])
def test_money_given_back_before_the_success_is_applied_when_the_payment_settles(market, kind):
    order = started(market)
    # The refund (or lost dispute) overtakes the payment's success...
    assert report(market, order, kind, TOTAL_8_T, "evt_back") == f"{kind} noted on reserved order"
    # ...which then settles the order as refunded: nothing delivered, the tonnes on offer.
    assert paid(market, order) == "refunded before delivery"

    assert market.app.get_order(order["order_id"]).state == REFUNDED
    assert market.app.ledger.get_account(BUYER).balance == 0
    assert market.counters() == (500, 0, 0, 500)
    assert refunded_to_payees(market, order["order_id"]) == 0  # no sale was booked
    assert_sound(market.app)


def test_a_partial_refund_moves_that_money_and_only_the_tonnes_it_pays_for(market):
    order = started(market)
    paid(market, order)

    # One cent of 15,000 back: the cent leaves the payees' allocations, no tonne comes back.
    report(market, order, PAYMENT_REFUNDED, 1, "evt_refund_1")
    assert market.app.get_order(order["order_id"]).state == FULFILLED
    assert market.app.ledger.get_account(BUYER).balance == 8
    assert refunded_to_payees(market, order["order_id"]) == 1

    # Stripe's running total reaches 5,000 (a third): 2.67 t paid back, so 2 t come back.
    outcome = report(market, order, PAYMENT_REFUNDED, 5_000, "evt_refund_2")
    assert "2 t recovered" in outcome
    assert market.app.ledger.get_account(BUYER).balance == 6
    assert market.counters() == (500, 0, 6, 494)
    assert refunded_to_payees(market, order["order_id"]) == 5_000
    farms = [p for entry in journal_entries(market.app) if entry.kind == "refund"
             for p in entry.postings if p.account.startswith("payable:farmers:")]
    assert farms and sum(p.amount for p in farms) == 3_000  # the farmers' 60 %, exactly

    # An older running total arriving late changes nothing.
    assert report(market, order, PAYMENT_REFUNDED, 3_000, "evt_refund_late") == (
        f"{PAYMENT_REFUNDED}: nothing more to reverse")
    # The rest: the order is refunded and the last 6 t come back.
    report(market, order, PAYMENT_REFUNDED, TOTAL_8_T, "evt_refund_3")
    assert market.app.get_order(order["order_id"]).state == REFUNDED
    assert market.app.ledger.get_account(BUYER).balance == 0
    assert refunded_to_payees(market, order["order_id"]) == TOTAL_8_T
    assert market.app.proceeds("USD").totals_by_project() == {"KAP-AF-01": 0}
    assert_sound(market.app)


def test_a_partial_refund_before_the_success_is_applied_with_it(market):
    order = started(market)
    report(market, order, PAYMENT_REFUNDED, 5_000, "evt_refund")

    assert paid(market, order).startswith("fulfilled; 5000 of 15000")

    assert market.app.ledger.get_account(BUYER).balance == 6
    assert refunded_to_payees(market, order["order_id"]) == 5_000
    assert_sound(market.app)


def test_a_dispute_that_opens_or_closes_won_changes_nothing_but_a_flag(market):
    order = started(market)
    paid(market, order)
    position = market.position()

    assert report(market, order, DISPUTE_OPENED, TOTAL_8_T, "evt_dispute_opened") == (
        "dispute opened: flagged for operators")
    assert report(market, order, DISPUTE_WON, TOTAL_8_T, "evt_dispute_won") == (
        "dispute won: nothing changes")

    fulfilled = market.app.get_order(order["order_id"])
    assert fulfilled.state == FULFILLED and len(fulfilled.flags) == 2
    assert market.app.ledger.get_account(BUYER).balance == 8
    assert refunded_to_payees(market, order["order_id"]) == 0
    assert market.position() > position  # the flags and the events' records, nothing else
    assert_sound(market.app)


@pytest.mark.parametrize("change", ["another order's payment", "another amount",
                                    "another currency", "a refund beyond the total"])
def test_an_event_that_is_not_its_orders_changes_nothing_and_is_flagged(market, change):
    order, other = started(market), started(market, 4)
    kind, amount, options = SUCCEEDED, order["amount_minor"], {}
    if change == "another order's payment":
        options["payment_id"] = other["payment_id"]
    elif change == "another amount":
        amount -= 1
    elif change == "another currency":
        options["currency"] = "PEN"
    else:
        paid(market, order)
        kind, amount = PAYMENT_REFUNDED, TOTAL_8_T + 1
    state = market.app.get_order(order["order_id"]).state

    outcome = report(market, order, kind, amount, "evt_odd", name_order=True, **options)

    assert outcome == MISMATCH
    after = market.app.get_order(order["order_id"])
    assert after.state == state and after.flags and "evt_odd" in after.flags[0]
    assert market.app.get_order(other["order_id"]).state == RESERVED
    assert report(market, order, kind, amount, "evt_odd", name_order=True,
                  **options) == "duplicate"
    assert_sound(market.app)
