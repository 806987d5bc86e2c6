"""Rules of buying on the market, on SQLite and PostgreSQL: reservations in escrow, payment
and delivery, the proceeds split, duplicate and unknown payment events, expiry, late
payments, cancellation, refusals, payouts and benefit-rule versions. After every scenario the
registry's own audit (``validate(replay(...))``) and the proceeds journal must still balance,
and the order book must agree with every order."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest

from ledger.domain.accounts import check_account_name
from ledger.demo import INVENTORY
from ledger.domain.errors import InsufficientCreditsError
from ledger.read.replay import replay
from market.application import Marketplace
from market.domain.errors import MarketError, OverpaidError
from market.domain.listings import ListingNotActiveError, NotEnoughAvailableError
from market.domain.orders import CANCELLED, EXPIRED, FULFILLED, RESERVED, REFUNDED, Order
from market.domain.payments import FAILED, SUCCEEDED, OfflinePaymentProvider, PaymentError, PaymentEvent
from market.domain.proceeds import CASH, FARMERS, payable_account
from market.domain.quotes import BelowMinimumQuantityError
from testbed.builders import claim, escrows_named_as_before
from tests.conftest import expire_as_the_worker
from tests.integration.market_scenario import (
    AIDER,
    BUYER,
    FEE,
    HECTARES,
    HELD,
    OTHER_BUYER,
    PRICE,
    PROJECT,
    SHARES,
    START,
    VINTAGE,
    Clock,
    Market,
    assert_sound,
    journal_entries,
    proceeds_problems,
    seed_market,
    serial_numbers,
)


def owed_by(entry) -> dict[str, int]:
    """What a sale's journal entry says is owed to each payee account."""
    return {posting.account: -posting.amount for posting in entry.postings if posting.amount < 0}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def market(database_url, clock):
    app = Marketplace(database=database_url, clock=clock)
    try:
        yield Market(app, clock, seed_market(app))
    finally:
        app.close()


# --- Reserving and delivering --------------------------------------------------------------


def test_buying_reserves_the_exact_serials_in_the_orders_escrow_and_takes_them_off_the_listing(
        market):
    before = serial_numbers(market.held())

    order_id = market.order(7)

    order = market.app.get_order(order_id)
    escrow = market.app.ledger.get_account(order.escrow_name)
    assert order.state == RESERVED
    assert (escrow.kind, escrow.owner) == ("escrow", "Acme-Carbon")
    # The serials that left the inventory are exactly those in escrow, and the order names them.
    assert before - serial_numbers(market.held()) == serial_numbers(escrow.blocks)
    assert escrow.balance == 7
    assert order.serials == [block.serial for block in escrow.blocks]
    assert market.counters() == (500, 7, 0, 493)
    assert order.total_minor == 13_125  # 7 t at USD 18.75
    assert order.reserved_until == START + timedelta(minutes=30)
    assert_sound(market.app)


def test_paying_moves_exactly_the_reserved_serials_to_the_buyer(market):
    order_id = market.order(7)
    escrow_name = market.app.get_order(order_id).escrow_name
    reserved = list(market.app.ledger.get_account(escrow_name).blocks)

    assert market.app.pay_offline(order_id) == "fulfilled"

    order = market.app.get_order(order_id)
    assert order.state == FULFILLED
    assert market.app.ledger.get_account(BUYER).blocks == reserved
    assert market.app.ledger.get_account(order.escrow_name).blocks == []
    assert market.counters() == (500, 0, 7, 493)
    assert sum(b.quantity for b in market.held()) == HELD - 7
    assert_sound(market.app)


def test_an_order_to_retire_retires_the_reserved_serials_with_the_buyers_claim(market):
    # The buyer asks for the tonnes to be retired on its behalf, not delivered.
    order_id = market.order(5, retirement=claim("Acme Carbon S.A.C."))
    escrow = market.app.get_order(order_id).escrow_name
    reserved = tuple(market.app.ledger.get_account(escrow).blocks)

    market.app.pay_offline(order_id)

    # The order names a retirement record that carries the claim and exactly those serials.
    order = market.app.get_order(order_id)
    retirement = market.app.ledger.get_retirement(order.delivery_reference)
    assert order.state == FULFILLED
    assert (retirement.blocks, retirement.claim) == (reserved, claim("Acme Carbon S.A.C."))
    assert retirement.account == escrow
    # Nothing was delivered to a buyer account, and replaying the registry shows it retired.
    assert market.app.ledger.get_account(BUYER).blocks == []
    assert replay(market.app).retired[order.delivery_reference] == list(reserved)
    assert market.counters() == (500, 0, 5, 495)
    assert_sound(market.app)


# --- Proceeds -------------------------------------------------------------------------------


def test_the_proceeds_of_a_sale_are_split_by_the_rule_and_among_farms_by_agroforestry_hectares(
        market):
    order_id = market.order(7)

    market.app.pay_offline(order_id)

    # USD 131.25: 25% and 15% to the partners, 60% (78.75) to the farms by 3 : 5.5 : 1.25 ha,
    # each part the floor of its share, the cents left over to the largest remainders.
    journal = market.app.proceeds("USD")
    (entry,) = journal_entries(market.app)
    assert entry.reference == order_id
    assert {posting.account: posting.amount for posting in entry.postings} == {
        CASH: 13_125,
        payable_account(AIDER): -3_281,
        payable_account(FEE): -1_969,
        payable_account(FARMERS, "F-001"): -2_423,
        payable_account(FARMERS, "F-002"): -4_442,
        payable_account(FARMERS, "F-003"): -1_010,
    }
    assert journal.owed(FARMERS, "F-002") == 4_442
    assert proceeds_problems(market.app) == []
    assert_sound(market.app)


@pytest.mark.parametrize("tonnes", [2, 3, 13, 97, 333])
def test_a_sales_parts_sum_exactly_to_its_total_and_each_is_within_a_cent_of_its_share(
        market, tonnes):
    order_id = market.order(tonnes)
    market.app.pay_offline(order_id)

    total = market.app.get_order(order_id).total_minor
    owed = owed_by(journal_entries(market.app)[0])
    farms = {code: owed.get(payable_account(FARMERS, code), 0) for code in HECTARES}
    # First the recipients by the rule, each within a cent of its exact share...
    parts = {AIDER: owed[payable_account(AIDER)], FEE: owed[payable_account(FEE)],
             FARMERS: sum(farms.values())}
    assert sum(parts.values()) == total
    assert all(abs(part - total * Fraction(SHARES[recipient], 100)) < 1
               for recipient, part in parts.items())
    # ...then the farmers' part among the farms by hectares, each within a cent of its share.
    hectares = sum(HECTARES.values())
    assert all(abs(part - parts[FARMERS] * Fraction(HECTARES[code]) / Fraction(hectares)) < 1
               for code, part in farms.items())
    assert len(owed) == 2 + len(HECTARES)  # no other payee, none left out
    assert proceeds_problems(market.app) == []


def test_a_new_rule_version_applies_only_to_sales_paid_after_it(market, clock):
    # Two orders are placed under the 60/25/15 rule; the first is paid at once.
    first, second = market.order(4), market.order(4, OTHER_BUYER)
    market.app.pay_offline(first)
    # A minute later the project agrees a new split; the second order is paid after that.
    clock.advance(1)
    market.app.set_benefit_rule(PROJECT, {FARMERS: 70, AIDER: 20, FEE: 10})
    clock.advance(1)
    market.app.pay_offline(second)

    # USD 75.00 each: the first sale keeps the old split, the second has the new one.
    by_order = {entry.reference: owed_by(entry) for entry in journal_entries(market.app)}
    assert (by_order[first][payable_account(AIDER)], by_order[first][payable_account(FEE)]) == (
        1_875, 1_125)
    assert (by_order[second][payable_account(AIDER)], by_order[second][payable_account(FEE)]) == (
        1_500, 750)
    assert sum(v for k, v in by_order[second].items() if k.startswith("payable:farmers:")) == 5_250
    assert proceeds_problems(market.app) == []


def test_the_proceeds_of_a_sale_are_booked_on_the_day_the_marketplace_says_it_was_paid(market):
    # The rule in force is picked by the marketplace's clock; the journal date must agree.
    order_id = market.order(2)

    market.app.pay_offline(order_id)

    (entry,) = journal_entries(market.app)
    assert entry.on == START.date()


@pytest.mark.parametrize("farm_code, paid, owed", [
    ("F-002", 4_442, 0), ("F-002", 1_000, 3_442), (None, 1_969, 0), (None, 969, 1_000),
])
def test_payouts_reduce_what_is_owed(market, farm_code, paid, owed):
    market.app.pay_offline(market.order(7))
    recipient = FARMERS if farm_code else FEE

    result = market.app.record_payout("USD", recipient, farm_code, paid, date(2026, 3, 31),
                                      "BCP-2026-03-0001")

    assert result["owed"] == owed == market.app.proceeds("USD").owed(recipient, farm_code)
    assert proceeds_problems(market.app) == []


def test_a_payout_cannot_exceed_what_is_owed(market):
    market.app.pay_offline(market.order(7))
    market.app.record_payout("USD", FARMERS, "F-001", 2_000, date(2026, 3, 31), "BCP-1")
    position = market.position()

    with pytest.raises(OverpaidError):
        market.app.record_payout("USD", FARMERS, "F-001", 424, date(2026, 3, 31), "BCP-2")

    assert market.position() == position
    assert market.app.proceeds("USD").owed(FARMERS, "F-001") == 423
    assert proceeds_problems(market.app) == []


# --- Payment events -------------------------------------------------------------------------


def test_a_payment_event_delivered_twice_is_acted_on_once(market):
    order_id = market.order(7)
    market.app.pay_offline(order_id)  # settles with event "offline_evt_<payment id>"
    payment_id = market.app.get_order(order_id).payment_id
    delivered, position = market.app.ledger.get_account(BUYER).blocks, market.position()

    outcome = market.succeeded(order_id, event_id=f"offline_evt_{payment_id}")

    assert outcome == "duplicate"
    assert market.position() == position  # not one event was stored
    assert market.app.ledger.get_account(BUYER).blocks == delivered
    assert len(journal_entries(market.app)) == 1
    assert_sound(market.app)


def test_a_second_success_event_for_a_paid_order_delivers_nothing_more(market):
    # Stripe may send two different events saying the same payment succeeded.
    order_id = market.order(7)
    market.app.pay_offline(order_id)

    assert market.succeeded(order_id, event_id="evt_another") == "already fulfilled"

    assert market.app.ledger.get_account(BUYER).balance == 7
    assert market.counters() == (500, 0, 7, 493)
    assert len(journal_entries(market.app)) == 1
    assert_sound(market.app)


@pytest.mark.parametrize("order_id", ["KAP-ORD-NOSUCHORDER9", None])
def test_an_event_for_an_unknown_order_is_recorded_and_changes_nothing_else(market, order_id):
    position = market.position()
    event = PaymentEvent("evt_stray", SUCCEEDED, "pi_unknown", order_id, 13_125, "USD")

    assert market.app.handle_payment_event(event) == "unknown order"

    # One event is stored: the record that this provider event was seen and acted on.
    stored = market.app.recorder.select_notifications(start=position + 1, limit=10)
    assert [item.topic.rsplit(":", 1)[1] for item in stored] == ["ProcessedPaymentEvent.Processed"]
    assert market.app.handle_payment_event(event) == "duplicate"
    assert market.position() == position + 1
    assert sum(b.quantity for b in market.held()) == HELD
    assert_sound(market.app)


def test_a_failed_payment_leaves_the_reservation_standing(market):
    order_id = market.order(7)
    payment_id = market.app.start_payment(order_id)["payment_id"]

    outcome = market.app.handle_payment_event(
        PaymentEvent("evt_failed", FAILED, payment_id, order_id, 13_125, "USD"))

    assert outcome == "payment failed for reserved order"
    assert market.app.get_order(order_id).state == RESERVED
    assert market.counters() == (500, 7, 0, 493)
    # The buyer tries again, and pays.
    assert market.succeeded(order_id) == "fulfilled"
    assert_sound(market.app)


@pytest.mark.parametrize("amount", [13_124, 13_126, 1])
def test_a_payment_of_another_amount_than_the_total_does_not_fulfil_the_order(market, amount):
    order_id = market.order(7)
    market.app.start_payment(order_id)

    # Signed by the provider, so answered (it stops retrying), but acted on by nobody.
    assert market.succeeded(order_id, amount_minor=amount) == "mismatch"

    order = market.app.get_order(order_id)
    assert order.state == RESERVED and "the order's total is 13125" in order.flags[0]
    assert market.app.ledger.get_account(BUYER).blocks == []
    assert_sound(market.app)


# --- Expiry, late payments and cancellation ------------------------------------------------


def test_an_expired_reservation_returns_its_tonnes_to_the_inventory_and_the_listing(
        market, clock):
    before = market.held()
    order_id = market.order(7)

    clock.advance(31)
    assert expire_as_the_worker(market.app) == [order_id]

    order = market.app.get_order(order_id)
    assert (order.state, order.serials) == (EXPIRED, [])
    assert market.held() == before
    assert market.app.ledger.get_account(order.escrow_name).blocks == []
    assert market.counters() == (500, 0, 0, 500)
    assert expire_as_the_worker(market.app) == []  # nothing is left to expire
    assert_sound(market.app)


@pytest.mark.parametrize("minutes, expires", [(0, False), (29, False), (30, True), (31, True)])
def test_a_reservation_expires_only_once_its_time_is_up(market, clock, minutes, expires):
    order_id = market.order(7)

    clock.advance(minutes)

    assert market.app.expire_order(order_id) is expires
    assert market.app.get_order(order_id).state == (EXPIRED if expires else RESERVED)
    assert market.counters()[1] == (0 if expires else 7)


def test_only_reservations_past_their_time_expire(market, clock):
    early = market.order(3)
    clock.advance(20)
    late = market.order(4, OTHER_BUYER)
    paid = market.order(5)
    market.app.pay_offline(paid)

    clock.advance(15)  # the first reservation is 35 minutes old, the second 15

    assert expire_as_the_worker(market.app) == [early]
    assert market.app.get_order(late).state == RESERVED
    assert market.app.get_order(paid).state == FULFILLED
    assert market.counters() == (500, 4, 5, 491)
    assert_sound(market.app)


def test_a_late_payment_after_expiry_is_fulfilled_while_the_tonnes_remain(market, clock):
    # The buyer starts paying, but the provider's confirmation comes after the reservation
    # has expired and the tonnes went back to the inventory.
    order_id = market.order(7)
    market.app.start_payment(order_id)
    clock.advance(45)
    expire_as_the_worker(market.app)

    assert market.succeeded(order_id) == "fulfilled"

    # The tonnes are still on offer, so they are reserved again and delivered.
    order = market.app.get_order(order_id)
    assert order.state == FULFILLED
    assert market.app.ledger.get_account(BUYER).balance == 7
    assert market.counters() == (500, 0, 7, 493)
    assert [entry.reference for entry in journal_entries(market.app)] == [order_id]
    assert_sound(market.app)


@pytest.fixture
def small_market(database_url, clock):
    """A listing of only 10 t, so that one order can take every tonne."""
    app = Marketplace(database=database_url, clock=clock)
    try:
        yield Market(app, clock, seed_market(app, on_offer=10))
    finally:
        app.close()


def test_a_late_payment_whose_tonnes_are_gone_is_refunded(small_market, clock):
    market = small_market
    # The first buyer reserves all 10 t and starts paying; the reservation expires...
    late = market.order(10)
    market.app.start_payment(late)
    clock.advance(31)
    expire_as_the_worker(market.app)
    # ...and another buyer reserves the same 10 t before the first payment is confirmed.
    other = market.order(10, OTHER_BUYER)

    assert market.succeeded(late).startswith("refunded (")

    # The late payer is refunded and gets nothing; the other buyer's reservation stands.
    order = market.app.get_order(late)
    assert order.state == REFUNDED
    assert order.refund_id == OfflinePaymentProvider().refund(order.payment_id, late)
    assert market.app.ledger.get_account(BUYER).blocks == []
    assert market.app.get_order(other).state == RESERVED
    assert market.counters() == (10, 10, 0, 0)
    assert journal_entries(market.app) == []
    assert market.succeeded(late) == "duplicate"
    assert_sound(market.app)


class FlakyRefunds(OfflinePaymentProvider):
    """The offline provider, but its first refund fails as a network error would."""

    def __init__(self):
        super().__init__()
        self.refunds: list[str] = []

    def refund(self, payment_id, order_id, amount_minor=None) -> str:
        self.refunds.append(payment_id)
        if len(self.refunds) == 1:
            raise PaymentError("payment provider error: connection reset")
        return super().refund(payment_id, order_id, amount_minor)


def test_a_refund_the_provider_failed_to_make_is_made_when_the_event_is_delivered_again(
        database_url, clock):
    provider = FlakyRefunds()
    app = Marketplace(database=database_url, payments=provider, clock=clock)
    try:
        market = Market(app, clock, seed_market(app, on_offer=10))
        late = market.order(10)
        app.start_payment(late)
        clock.advance(31)
        expire_as_the_worker(app)
        market.order(10, OTHER_BUYER)
        # The refund call fails, so the webhook is answered with an error...
        with pytest.raises(PaymentError):
            market.succeeded(late)

        # ...and the provider delivers the same event again: now the refund must be made.
        # (Today the first delivery's record makes this one a 'duplicate': no refund, ever.)
        market.succeeded(late)

        assert app.get_order(late).state == REFUNDED
        assert len(provider.refunds) == 2
    finally:
        app.close()


class RecordedRefunds(OfflinePaymentProvider):
    def __init__(self):
        super().__init__()
        self.refunds: list[tuple[str, str]] = []

    def refund(self, payment_id, order_id, amount_minor=None) -> str:
        self.refunds.append((payment_id, order_id))
        return super().refund(payment_id, order_id, amount_minor)


def test_cancelling_a_reserved_order_releases_its_tonnes(market):
    before = market.held()
    order_id = market.order(7)

    summary = market.app.cancel_order(order_id, "the buyer changed their mind")

    order = market.app.get_order(order_id)
    assert summary["state"] == order.state == CANCELLED
    assert order.note == "the buyer changed their mind"
    assert market.held() == before
    assert market.app.ledger.get_account(order.escrow_name).blocks == []
    assert market.counters() == (500, 0, 0, 500)
    assert_sound(market.app)


def test_a_payment_for_a_cancelled_order_is_refunded_and_delivers_nothing(database_url, clock):
    provider = RecordedRefunds()
    app = Marketplace(database=database_url, payments=provider, clock=clock)
    try:
        market = Market(app, clock, seed_market(app))
        order_id = market.order(7)
        payment_id = app.start_payment(order_id)["payment_id"]
        app.cancel_order(order_id, "cancelled by the operator")

        assert market.succeeded(order_id).startswith("refunded (")
        assert app.get_order(order_id).state == "refunded"  # the refund is on the record

        assert provider.refunds == [(payment_id, order_id)]
        assert app.ledger.get_account(BUYER).blocks == []
        assert market.counters() == (500, 0, 0, 500)
        assert_sound(app)
    finally:
        app.close()


@pytest.mark.parametrize("settle", ["pay", "expire"])
def test_an_order_that_is_no_longer_reserved_cannot_be_cancelled(market, clock, settle):
    order_id = market.order(7)
    if settle == "pay":
        market.app.pay_offline(order_id)
    else:
        clock.advance(31)
        market.app.expire_order(order_id)
    position = market.position()

    with pytest.raises(MarketError, match=f"order {order_id} is "):
        market.app.cancel_order(order_id, "too late")

    assert market.position() == position


# --- Escrow names ---------------------------------------------------------------------------


def test_an_orders_escrow_and_the_retirement_from_it_do_not_name_the_order(market):
    order_id = market.order(5, retirement=claim("Acme Carbon S.A.C."))
    escrow = market.app.get_order(order_id).escrow_account

    market.app.pay_offline(order_id)

    # The retirement, public with its proof, is recorded from the escrow account.
    delivery_reference = market.app.get_order(order_id).delivery_reference
    retirement = market.app.ledger.get_retirement(delivery_reference)
    assert retirement.account == escrow == Order.escrow_name_of(order_id)
    assert order_id.lower() not in escrow.lower()
    check_account_name(escrow)
    assert market.app.ledger.get_account(escrow).kind == "escrow"
    # Derived again from the order id alone (in either case), and each order's its own.
    assert Order.escrow_name_of(order_id.lower()) == escrow
    assert market.app.get_order(market.order(5)).escrow_account != escrow
    assert_sound(market.app)


def test_orders_under_old_and_new_escrow_names_alike_expire_pay_refund_and_cancel(
        market, clock):
    # A store upgraded with reservations standing: orders placed before the upgrade have
    # escrow accounts named after them, those placed after have opaque ones.
    with escrows_named_as_before():
        old = [market.order(3) for _ in range(4)]
    new = [market.order(3) for _ in range(4)]
    assert [market.app.get_order(o).escrow_account for o in old] == [
        f"escrow-{o.lower()}" for o in old]
    assert not any(o.lower() in market.app.get_order(o).escrow_account for o in new)
    (old_due, old_paid, old_late, old_cancelled), (new_due, new_paid, new_late, new_released) = (
        old, new)
    for order_id in (old_late, new_late):
        market.app.start_payment(order_id)
    for order_id in (old_paid, new_paid):
        assert market.app.pay_offline(order_id) == "fulfilled"
    market.app.cancel_order(old_cancelled, "the buyer changed their mind")
    market.app.release_reservation(new_released, "held too long")

    # The worker finds the due reservations in the order book, whatever their escrow's name.
    clock.advance(31)
    assert sorted(expire_as_the_worker(market.app)) == sorted(
        [old_due, old_late, new_due, new_late])
    # Late payments reserve again in the escrow each order recorded, and deliver.
    for order_id in (old_late, new_late):
        assert market.succeeded(order_id) == "fulfilled"
    # Refunds take the delivered credits back.
    for order_id in (old_paid, new_paid):
        assert market.app.refund_order(order_id, "goodwill")["state"] == REFUNDED

    assert [market.app.get_order(o).state for o in old + new] == [
        EXPIRED, REFUNDED, FULFILLED, CANCELLED, EXPIRED, REFUNDED, FULFILLED, CANCELLED]
    assert all(market.app.ledger.get_account(market.app.get_order(o).escrow_name).blocks == []
               for o in old + new)
    assert market.app.ledger.get_account(BUYER).balance == 6  # the two late payments' tonnes
    assert market.counters() == (500, 0, 6, 494)
    assert_sound(market.app)


# --- Refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("tonnes, status, error", [
    (501, "active", NotEnoughAvailableError),
    (10**6, "active", NotEnoughAvailableError),
    (1, "active", BelowMinimumQuantityError),
    (2, "paused", ListingNotActiveError),
    (2, "closed", ListingNotActiveError),
])
def test_cannot_order_more_than_available_below_the_minimum_or_from_a_listing_not_active(
        market, tonnes, status, error):
    if status != "active":
        market.app.change_listing(market.listing_id, status=status)
    position = market.position()

    with pytest.raises(error):
        market.order(tonnes)

    assert market.position() == position
    assert sum(b.quantity for b in market.held()) == HELD


def test_cannot_order_more_than_is_left_once_others_have_reserved(market):
    market.order(490, OTHER_BUYER)

    with pytest.raises(NotEnoughAvailableError):
        market.order(11)
    market.order(10)

    assert market.counters() == (500, 500, 0, 0)
    assert_sound(market.app)


@pytest.mark.parametrize("on_offer, refused", [(HELD, False), (HELD + 1, True)])
def test_cannot_list_more_than_the_inventory_holds(market, on_offer, refused):
    def list_it():
        return market.app.create_listing(PROJECT, VINTAGE, INVENTORY, PRICE, "USD", on_offer)

    if refused:
        with pytest.raises(InsufficientCreditsError):
            list_it()
    else:
        assert market.app.get_listing(list_it()["listing_id"]).available == HELD


def test_cannot_offer_more_than_the_inventory_holds_besides_what_is_reserved_or_sold(market):
    market.app.pay_offline(market.order(100))
    market.order(50)
    # 150 t have left the inventory (to a buyer and to escrow) and count on the listing.

    market.app.change_listing(market.listing_id, on_offer=HELD)
    with pytest.raises(InsufficientCreditsError):
        market.app.change_listing(market.listing_id, on_offer=HELD + 1)

    assert market.counters() == (HELD, 50, 100, HELD - 150)
    assert_sound(market.app)
