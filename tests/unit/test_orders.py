"""Rules of the Order aggregate on its own: which command may run from which state, what
each legal one leaves behind, payments of the wrong amount, and replay."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ledger.domain.accounts import check_account_name
from market.domain.errors import MarketError
from market.domain.orders import (
    ALLOWED_FROM,
    CANCELLED,
    DRAFT,
    EXPIRED,
    FULFILLED,
    PAID,
    REFUNDED,
    RESERVED,
    IllegalTransitionError,
    Order,
    order_aggregate_id,
)
from testbed.builders import claim

TOTAL_MINOR = 12_500
UNTIL = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
SERIALS = ["KAP-7-1758001-1758010-KAPAF01-2022-PE"]
STATES = (DRAFT, RESERVED, PAID, FULFILLED, EXPIRED, CANCELLED, REFUNDED)

# One way to run each command, and the state a legal run leaves the order in (None: the
# state does not change; attaching a payment only records it).
COMMANDS = {
    "reserve": (lambda order: order.reserve(SERIALS, UNTIL), RESERVED),
    "attach_payment": (lambda order: order.attach_payment("offline", "pi_1"), None),
    "pay": (lambda order: order.pay("evt_1", TOTAL_MINOR), PAID),
    "fulfil": (lambda order: order.fulfil("KAP-TRF-1"), FULFILLED),
    "expire": (lambda order: order.expire(), EXPIRED),
    "cancel": (lambda order: order.cancel("the buyer changed their mind"), CANCELLED),
    "refund": (lambda order: order.refund("re_1", "paid after expiry"), REFUNDED),
}

# The shortest path of commands from a new (draft) order to each state.
PATHS = {
    DRAFT: [],
    RESERVED: ["reserve"],
    PAID: ["reserve", "pay"],
    FULFILLED: ["reserve", "pay", "fulfil"],
    EXPIRED: ["reserve", "expire"],
    CANCELLED: ["cancel"],
    REFUNDED: ["reserve", "pay", "refund"],
}

LEGAL = [(command, state) for command, states in ALLOWED_FROM.items() for state in states]
ILLEGAL = [(command, state) for command in ALLOWED_FROM for state in STATES
           if state not in ALLOWED_FROM[command]]


def new_order(retirement=None) -> Order:
    return Order("KAP-ORD-7F3K9Q2M4XBD", "Acme S.A.C.", "acme", "listing-1", "KAP-AF-01", 2022,
                 10, Decimal("12.50"), TOTAL_MINOR, "USD", retirement)


def order_in(state: str) -> Order:
    order = new_order()
    for command in PATHS[state]:
        COMMANDS[command][0](order)
    assert order.state == state  # the path is right, or every test below means nothing
    return order


def replayed(aggregate):
    """A fresh aggregate rebuilt from the events the given one collected."""
    return functools.reduce(lambda state, event: event.mutate(state), aggregate.collect_events(),
                            None)


def test_the_table_covers_every_command_and_every_state():
    assert set(ALLOWED_FROM) == set(COMMANDS)
    assert {state for states in ALLOWED_FROM.values() for state in states} <= set(STATES)
    assert len(LEGAL) + len(ILLEGAL) == len(COMMANDS) * len(STATES)


def test_a_new_order_is_a_draft_with_nothing_reserved_or_paid():
    order = new_order()

    assert (order.state, order.serials, order.escrow_account, order.reserved_until) == (
        DRAFT, [], None, None)
    assert (order.payment_id, order.paid_minor, order.delivery_reference) == (None, 0, None)
    assert order.id == order_aggregate_id("kap-ord-7f3k9q2m4xbd ")


@pytest.mark.parametrize("command, state", LEGAL)
def test_a_command_runs_from_every_state_it_is_allowed_from(command, state):
    order = order_in(state)
    run, target = COMMANDS[command]
    version = order.version

    run(order)

    assert order.state == (target or state)
    assert order.version == version + 1


@pytest.mark.parametrize("command, state", ILLEGAL)
def test_a_command_from_any_other_state_is_refused_naming_the_state(command, state):
    order = order_in(state)
    before = (vars(order).copy(), order.version)

    with pytest.raises(IllegalTransitionError) as refused:
        COMMANDS[command][0](order)

    message = str(refused.value)
    assert f"is {state}:" in message
    assert order.order_id in message
    assert command.replace("_", " ") in message
    assert (vars(order), order.version) == before  # nothing was recorded


def test_an_illegal_transition_is_a_market_error():
    assert issubclass(IllegalTransitionError, MarketError)


def test_reserving_puts_the_serials_in_an_escrow_whose_name_does_not_reveal_the_order():
    order = order_in(RESERVED)

    assert order.escrow_account == order.escrow_name == Order.escrow_name_of(order.order_id)
    assert order.escrow_account.startswith("escrow-")
    assert "7f3k9q2m4xbd" not in order.escrow_account.lower()
    check_account_name(order.escrow_account)
    assert (order.serials, order.reserved_until) == (SERIALS, UNTIL)


def test_an_order_reserved_under_an_old_escrow_name_keeps_it_through_expiry_and_replay():
    order = new_order()
    order._reserved("escrow-kap-ord-7f3k9q2m4xbd", SERIALS, UNTIL)  # as reserved before
    order.expire()
    order.reserve(SERIALS, UNTIL)  # a late payment reserves again

    for same in (order, replayed(order)):
        assert same.escrow_account == same.escrow_name == "escrow-kap-ord-7f3k9q2m4xbd"
    assert order.escrow_name != Order.escrow_name_of(order.order_id)


@pytest.mark.parametrize("state", [EXPIRED, CANCELLED])
def test_an_order_that_lets_go_of_its_tonnes_forgets_its_serials(state):
    assert order_in(state).serials == []


def test_an_expired_order_reserves_again_for_a_late_payment():
    order = order_in(EXPIRED)
    later = datetime(2026, 3, 1, 14, 0, tzinfo=timezone.utc)

    order.reserve(["KAP-7-1758011-1758020-KAPAF01-2022-PE"], later)
    order.pay("evt_late", TOTAL_MINOR)

    assert (order.state, order.reserved_until, order.paid_minor) == (PAID, later, TOTAL_MINOR)


@pytest.mark.parametrize("amount", [0, 1, TOTAL_MINOR - 1, TOTAL_MINOR + 1, 2 * TOTAL_MINOR])
def test_paying_another_amount_than_the_total_is_refused(amount):
    order = order_in(RESERVED)

    with pytest.raises(IllegalTransitionError) as refused:
        order.pay("evt_1", amount)

    assert f"paid {amount} but the total is {TOTAL_MINOR}" in str(refused.value)
    assert (order.state, order.paid_minor) == (RESERVED, 0)


def test_a_payment_is_attached_once_and_attaching_it_again_changes_nothing():
    order = order_in(RESERVED)
    order.attach_payment("stripe", "pi_1")
    version = order.version

    order.attach_payment("stripe", "pi_1")

    assert (order.provider, order.payment_id, order.version) == ("stripe", "pi_1", version)


def test_an_order_with_a_payment_refuses_a_second_one():
    order = order_in(RESERVED)
    order.attach_payment("stripe", "pi_1")

    with pytest.raises(IllegalTransitionError, match="already has payment pi_1"):
        order.attach_payment("stripe", "pi_2")
    assert order.payment_id == "pi_1"


def test_a_full_journey_records_what_happened_at_each_step():
    # The buyer reserves, pays through the provider, and the tonnes are delivered.
    order = order_in(RESERVED)
    order.attach_payment("stripe", "pi_1")
    order.pay("evt_1", TOTAL_MINOR)
    order.fulfil("KAP-TRF-1")
    # Later the provider reports a refund: the order says so, with the reason.
    order.refund("re_1", "charge.refunded reported by stripe")

    assert (order.state, order.paid_minor, order.delivery_reference) == (
        REFUNDED, TOTAL_MINOR, "KAP-TRF-1")
    assert (order.refund_id, order.note) == ("re_1", "charge.refunded reported by stripe")


@pytest.mark.parametrize("state", STATES)
def test_an_order_replays_from_its_events_to_the_same_state(state):
    order = order_in(state)
    if state in ALLOWED_FROM["attach_payment"]:
        order.attach_payment("stripe", "pi_1")

    copy = replayed(order)

    assert vars(copy) == vars(order)
    assert (copy.state, copy.version) == (state, order.version)


def test_an_order_to_retire_keeps_its_claim_through_replay():
    order = new_order(retirement=claim("Andes Coffee Roasters S.A.C."))
    order.reserve(SERIALS, UNTIL)

    assert replayed(order).retirement == claim("Andes Coffee Roasters S.A.C.")


def test_money_given_back_is_the_latest_refund_total_plus_lost_disputes_at_most_the_total():
    order = order_in(RESERVED)
    order.note_refunds(3000)
    order.note_refunds(1000)  # an older running total, delivered late
    assert order.reversal_due == 3000
    order.note_dispute_lost(order.total_minor)
    assert order.reversal_due == order.total_minor
    assert replayed(order).reversal_due == order.total_minor


def test_a_partly_refunded_order_stays_fulfilled_and_keeps_its_flags_through_replay():
    order = order_in(FULFILLED)
    order.flag("dispute_opened (evt_1)")
    order.partly_refund(1000, 1, "a part back")

    again = replayed(order)
    assert (again.state, again.reversed_minor, again.tonnes_taken_back) == (FULFILLED, 1000, 1)
    assert again.flags == ["dispute_opened (evt_1)"]
