"""Payments as deployed: production refuses to start without a real payment provider, a test
provider's webhook secret is this installation's own, nothing anonymous names an order, and
operators see the payment events that did not match their order."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from market.domain.payments import REFUNDED, SUCCEEDED, OfflinePaymentProvider, PaymentEvent
from market.settings import payment_provider
from tests.conftest import settled
from tests.pdf_text import page_text
from tests.web.buyer_forms import place
from tests.web.site_walk import sign_the_log, walk
from tests.web.conftest import post_form
from web import ConfigurationError, create_app

# The offline provider's secret as it once was, written in the source for anyone to read.
PUBLISHED_SECRET = "offline-demo-secret"
PUBLIC_API = ("/api/v1/retirements", "/api/v1/projects", "/api/v1/listings")


@pytest.fixture
def production(monkeypatch, tmp_path):
    for name in ("KAPOK_STRIPE_SECRET_KEY", "KAPOK_STRIPE_WEBHOOK_SECRET",
                 "KAPOK_OFFLINE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAPOK_ENV", "production")
    monkeypatch.setenv("KAPOK_RATELIMIT_STORAGE_URI", "memory://")  # production needs one
    monkeypatch.setenv("KAPOK_OFFLINE_WEBHOOK_SECRET_FILE", str(tmp_path / "offline-secret"))


def test_production_refuses_to_start_with_only_the_offline_test_provider(production, store_url):
    with pytest.raises(ConfigurationError, match="no real payment provider.*KAPOK_STRIPE"):
        create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32})


def test_production_refuses_stripe_without_its_webhook_secret(production, store_url,
                                                               monkeypatch):
    monkeypatch.setenv("KAPOK_STRIPE_SECRET_KEY", "sk_test_x")
    with pytest.raises(ConfigurationError, match="KAPOK_STRIPE_WEBHOOK_SECRET"):
        create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32})


def test_production_starts_with_stripe_keys(production, store_url, monkeypatch):
    monkeypatch.setenv("KAPOK_STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setenv("KAPOK_STRIPE_WEBHOOK_SECRET", "whsec_x")
    app = create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32})
    assert app.extensions["kapok_market"].payments.name == "stripe"
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


def test_the_offline_secret_is_random_per_installation_and_kept(tmp_path):
    body = b'{"any": "event"}'
    first = payment_provider({"KAPOK_OFFLINE_WEBHOOK_SECRET_FILE": str(tmp_path / "a")})
    again = payment_provider({"KAPOK_OFFLINE_WEBHOOK_SECRET_FILE": str(tmp_path / "a")})
    other = payment_provider({"KAPOK_OFFLINE_WEBHOOK_SECRET_FILE": str(tmp_path / "b")})

    assert first.sign(body, 1) == again.sign(body, 1)  # kept across restarts
    assert first.sign(body, 1) != other.sign(body, 1)  # each installation its own
    assert first.sign(body, 1) != OfflinePaymentProvider(PUBLISHED_SECRET).sign(body, 1)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600


def test_a_refund_forged_with_the_published_secret_is_refused(app, market, monkeypatch):
    order = next(row for row in market.caught_up_view().orders(state="fulfilled")[0])
    paid = market.get_order(order["order_id"])
    forger = OfflinePaymentProvider(PUBLISHED_SECRET)
    body = forger.event_payload(PaymentEvent("evt_forged", REFUNDED, paid.payment_id,
                                             paid.order_id, paid.total_minor, paid.currency))
    before = market.recorder.max_notification_id()

    response = app.test_client().post("/webhooks/payments", data=body, headers={
        "Stripe-Signature": forger.sign(body), "Content-Type": "application/json"})

    assert response.status_code == 400
    assert market.recorder.max_notification_id() == before
    assert market.get_order(paid.order_id).state == "fulfilled"


def test_no_anonymous_page_names_a_buyers_order(anonymous, market):
    order_ids = [row["order_id"] for row in market.caught_up_view().orders(limit=1000)[0]]
    assert any(market.get_order(o).retirement for o in order_ids)  # one retired from escrow
    sign_the_log(market)
    pages = {path: anonymous.get(path).get_data(as_text=True)
             for path in [*walk(anonymous), *PUBLIC_API]}
    for row in json.loads(pages["/api/v1/retirements"])["items"]:
        for path in (f"/api/v1/retirements/{row['retirement_id']}",
                     f"/audit/proofs/{row['retirement_id']}.json"):
            pages[path] = anonymous.get(path).get_data(as_text=True)
    assert any(path.startswith("/registry/KAP-RET") for path in pages)

    leaks = {path: order for path, text in pages.items() for order in order_ids
             if order.lower() in text.lower()}

    assert leaks == {}
    assert any("reserved in escrow" in text for text in pages.values())


def test_a_retire_at_once_orders_public_proof_and_record_do_not_name_the_order(
        buyer, anonymous, market):
    # A buyer orders tonnes retired at once, and pays, through the site.
    order_id = place(buyer, market, tonnes="2", retire_now="y", beneficiary="Andes Team")
    post_form(buyer, f"/my/orders/{order_id}/pay", {})
    order = market.get_order(order_id)
    sign_the_log(settled(market))  # the worker signs a head past the retirement

    proof = anonymous.get(f"/audit/proofs/{order.delivery_reference}.json")
    record = anonymous.get(f"/registry/{order.delivery_reference}")

    assert proof.status_code == record.status_code == 200
    event = proof.json["event"]
    assert event["decoded"]["account"] == order.escrow_account  # retired from the escrow
    stored = base64.b64decode(event["state"]).decode()
    for text in (proof.get_data(as_text=True), stored, record.get_data(as_text=True)):
        assert order_id.lower() not in text.lower()
    # The buyer's certificate still names the order: the order book knows its escrow.
    certificate = buyer.get(f"/my/retirements/{order.delivery_reference}/certificate.pdf")
    assert f"Order {order_id} (fulfilled) paid USD 28.00" in page_text(certificate.data)


def test_operators_see_an_event_that_did_not_match_its_order(market, operator):
    listing = market.listings()[2]
    order = market.place_order(str(listing.id), 3, "Lima Logistics", "lima-logistics")
    payment = market.start_payment(order["order_id"])
    assert market.handle_payment_event(PaymentEvent(
        "evt_short", SUCCEEDED, payment["payment_id"], order["order_id"],
        payment["amount_minor"] - 1, payment["currency"])) == "mismatch"

    page = operator.get(f"/console/orders/{order['order_id']}").get_data(as_text=True)

    assert "For operators' attention" in page and "evt_short" in page
