"""Webhook storms: the provider's events for several orders arrive duplicated, out of order,
hours late (after reservations expired), refunds in parts and disputes opened, won and lost.

The policy (README): what the provider gave back of a payment (its running total of refunds,
plus what lost disputes took) is remembered whenever it arrives and applied once the payment
has settled; all of it refunds the order with nothing left with the buyer, a part takes back
the money and the tonnes it pays for (rounded down); a dispute that opens or closes won
changes nothing. So however the events arrive, each order ends as the set of events it was
sent says, the money journal holds exactly what was not given back, the buyer exactly the
tonnes not taken back, the registry's rules hold, and a repeated event is only a duplicate."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.application import Marketplace
from market.domain.orders import EXPIRED, FULFILLED, REFUNDED, RESERVED
from market.domain.payments import (
    DISPUTE_LOST,
    DISPUTE_OPENED,
    DISPUTE_WON,
    FAILED,
    REFUNDED as PAYMENT_REFUNDED,
    SUCCEEDED,
)
from market.domain.payments import OfflinePaymentProvider, PaymentEvent
from tests.conftest import expire_as_the_worker
from tests.integration.market_scenario import BUYER, Clock, assert_sound, seed_market
from web import create_app

# What the provider may report, with the part of the payment it concerns (in thirds).
REPORTS = {"paid": (SUCCEEDED, 3), "failed": (FAILED, 3), "refund a third": (PAYMENT_REFUNDED, 1),
           "refund all": (PAYMENT_REFUNDED, 3), "dispute opened": (DISPUTE_OPENED, 3),
           "dispute won": (DISPUTE_WON, 3), "dispute lost": (DISPUTE_LOST, 3)}
GIVE_BACK = ("refund a third", "refund all", "dispute lost")
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
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(sorted(REPORTS)), st.integers(1, 3),
                       st.integers(0, 7 * 60)),  # order, report, copies, minutes later
             min_size=1, max_size=14),
    st.randoms(use_true_random=False),
)


def given_back(total: int, reports: set[str]) -> int:
    """What the provider gave back of a payment, by the reports it sent (in any order)."""
    refunded = max([total // 3 if "refund a third" in reports else 0,
                    total if "refund all" in reports else 0])
    return min(total, refunded + (total if "dispute lost" in reports else 0))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(storm=storms)
def test_any_storm_of_events_leaves_every_order_as_its_events_say(
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
        events, sent = [], {order["order_id"]: set() for order in orders}
        for index, report, copies, minutes in deliveries:
            order = orders[index % len(orders)]
            kind, thirds = REPORTS[report]
            event = PaymentEvent(f"evt_{report}_{order['order_id']}", kind, order["payment_id"],
                                 order["order_id"] if kind in (SUCCEEDED, FAILED) else None,
                                 order["amount_minor"] * thirds // 3, "USD", 0)
            events += [(event, minutes)] * copies
            sent[order["order_id"]].add(report)
        shuffler.shuffle(events)

        seen: set[str] = set()
        for event, minutes in events:
            clock.advance(minutes)
            expire_as_the_worker(market)  # the worker, running meanwhile
            outcome = market.handle_payment_event(event)
            if event.event_id in seen:
                assert outcome == "duplicate"
            seen.add(event.event_id)

        kept_tonnes = 0
        entries = market.caught_up_view().proceeds_entries("USD")
        for placed in orders:
            order = market.get_order(placed["order_id"])
            back = given_back(order.total_minor, sent[order.order_id])
            if "paid" not in sent[order.order_id]:
                assert order.state in (RESERVED, EXPIRED)
                expected_booked = 0
            elif back == order.total_minor:
                assert order.state == REFUNDED
                expected_booked = 0
            else:
                assert order.state == FULFILLED
                expected_booked = order.total_minor - back
                kept_tonnes += order.tonnes - back * order.tonnes // order.total_minor
            booked = sum(-p.amount for entry in entries
                         if entry.reference == order.order_id
                         for p in entry.postings if p.account.startswith("payable:"))
            # Money owed to the farms and partners is exactly what the buyer paid and kept paid.
            assert booked == expected_booked
        # The buyer holds exactly the tonnes delivered and not taken back.
        assert market.ledger.get_account(BUYER).balance == kept_tonnes
        assert market.get_listing(listing).sold == kept_tonnes
        assert_sound(market)
    finally:
        market.close()


def test_a_storm_through_the_webhook_endpoint_settles_as_its_events_say_and_refuses_forgeries(
        tmp_path):
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
    assert results[0] == f"{PAYMENT_REFUNDED} noted on reserved order"
    assert results[1] == "refunded before delivery"
    assert results[2:4] == ["duplicate", "duplicate"] and results[5] == "duplicate"
    assert market.get_order(placed["order_id"]).state == REFUNDED
    assert market.ledger.get_account(BUYER).balance == 0
    assert_sound(market)
    market.close()
