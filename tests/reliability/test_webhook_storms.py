"""Webhook storms: the provider's events for several orders arrive duplicated, out of order,
hours late (after reservations expired) and for orders already refunded. Whatever the order
of arrival, each order ends in one coherent state, is delivered at most once, the money
journal and the registry's rules hold, and a repeated event is only ever a duplicate."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.application import Marketplace
from market.orders import CANCELLED, EXPIRED, FULFILLED, REFUNDED, RESERVED
from market.payments import DISPUTED, FAILED, REFUNDED as PAYMENT_REFUNDED, SUCCEEDED
from market.payments import OfflinePaymentProvider, PaymentEvent
from tests.integration.test_market_orders import BUYER, Clock, assert_sound, seed_market
from web import create_app

KINDS = (SUCCEEDED, FAILED, PAYMENT_REFUNDED, DISPUTED)
ON_OFFER = 40


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("storm")
    app = Marketplace(database=f"sqlite:///{folder}/kapok.db")
    listing = seed_market(app, on_offer=ON_OFFER, minimum_quantity=1)
    app.close()
    return folder, listing


storms = st.tuples(
    st.lists(st.integers(3, 10), min_size=2, max_size=4),  # tonnes of each order (<= 40 t)
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(KINDS), st.integers(1, 3),
                       st.integers(0, 7 * 60)),  # order, kind, copies, minutes later
             min_size=1, max_size=14),
    st.randoms(use_true_random=False),
)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(storm=storms)
def test_any_storm_of_events_leaves_every_order_coherent_and_delivered_at_most_once(
        seeded_store, tmp_path_factory, storm):
    sizes, deliveries, shuffler = storm
    folder, listing = seeded_store
    copy = tmp_path_factory.mktemp("copy")
    shutil.copy(folder / "kapok.db", copy / "kapok.db")
    clock = Clock()
    market = Marketplace(database=f"sqlite:///{copy}/kapok.db", clock=clock)
    try:
        orders = []
        for tonnes in sizes:
            placed = market.place_order(listing, tonnes, BUYER.title(), BUYER)
            orders.append(market.start_payment(placed["order_id"]))
        events = []
        for index, kind, copies, minutes in deliveries:
            order = orders[index % len(orders)]
            event = PaymentEvent(f"evt_{kind}_{order['order_id']}", kind, order["payment_id"],
                                 order["order_id"] if kind in (SUCCEEDED, FAILED) else None,
                                 order["amount_minor"], "USD", 0)
            events += [(event, minutes)] * copies
        shuffler.shuffle(events)

        seen: set[str] = set()
        for event, minutes in events:
            clock.advance(minutes)
            market.expire_due_orders()  # the worker, running meanwhile
            outcome = market.handle_payment_event(event)
            if event.event_id in seen:
                assert outcome == "duplicate"
            seen.add(event.event_id)

        fulfilled_tonnes = 0
        entries = market.caught_up_view().proceeds_entries("USD")
        for placed in orders:
            order = market.get_order(placed["order_id"])
            assert order.state in (RESERVED, EXPIRED, FULFILLED, REFUNDED, CANCELLED)
            booked = sum(-p.amount for entry in entries
                         if entry.reference == order.order_id
                         for p in entry.postings if p.account.startswith("payable:"))
            # Money owed to the farms exists exactly for delivered, unrefunded orders.
            assert booked == (order.total_minor if order.state == FULFILLED else 0)
            if order.state == FULFILLED:
                fulfilled_tonnes += order.tonnes
        # The buyer holds exactly what was delivered and not taken back by a refund.
        assert market.get_account(BUYER).balance == fulfilled_tonnes
        listing_now = market.get_listing(listing)
        assert listing_now.sold == fulfilled_tonnes
        assert_sound(market)
    finally:
        market.close()


def test_a_storm_through_the_webhook_endpoint_settles_once_and_refuses_forgeries(tmp_path):
    provider = OfflinePaymentProvider("storm-secret")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/kapok.db", "TESTING": True,
                      "SECRET_KEY": "x", "PAYMENT_PROVIDER": provider})
    market = app.extensions["kapok_market"]
    listing = seed_market(market, on_offer=ON_OFFER, minimum_quantity=1)
    placed = market.place_order(listing, 6, BUYER.title(), BUYER)
    started = market.start_payment(placed["order_id"])
    paid = PaymentEvent("evt_paid", SUCCEEDED, started["payment_id"], placed["order_id"],
                        started["amount_minor"], "USD", 0)
    refunded = PaymentEvent("evt_refund", PAYMENT_REFUNDED, started["payment_id"], None,
                            started["amount_minor"], "USD", 0)
    client = app.test_client()

    def deliver(event, secret_ok=True):
        body = provider.event_payload(event)
        signer = provider if secret_ok else OfflinePaymentProvider("forged")
        return client.post("/webhooks/payments", data=body, headers={
            "Stripe-Signature": signer.sign(body), "Content-Type": "application/json"})

    # The refund arrives first (out of order), then the payment three times, a forgery of
    # the refund, and the refund again.
    outcomes = [deliver(refunded), deliver(paid), deliver(paid), deliver(paid),
                deliver(refunded, secret_ok=False), deliver(refunded)]
    codes = [response.status_code for response in outcomes]
    assert codes == [200, 200, 200, 200, 400, 200]
    results = [json.loads(r.data).get("outcome") for r in outcomes]
    assert results[1] == "fulfilled" and results[2:4] == ["duplicate", "duplicate"]
    assert results[5] == "duplicate"  # the early refund was recorded when it came
    assert market.get_order(placed["order_id"]).state == FULFILLED
    assert_sound(market)
    market.close()
