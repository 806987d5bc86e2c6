"""Paying by card with Stripe (localstripe, in its own process). Through the API, for a
buyer's own integration: Kapok starts the payment and hands back its client secret and the
publishable key; the card goes from the integrator's Stripe.js to Stripe; Stripe's signed
webhook fulfils the order. On the order page: cards tried per organisation and hour are
limited, so the checkout cannot serve to test stolen cards. (The page's card form itself is
driven in Chromium: tests/e2e/test_card_payment.py.)"""

from __future__ import annotations

import pytest

from market.adapters.stripe_payments import StripePaymentProvider
from tests.conftest import view_worker
from tests.integration.localstripe_server import (  # noqa: F401  (pytest fixtures)
    localstripe,
    localstripe_process,
    webhook_endpoint,
)
from tests.web.api_calls import assert_error, bearer, first_listing, place_order
from tests.web.conftest import LOGINS, csrf_token, log_in, post_form
from web import create_app

WEBHOOK_SECRET = "whsec_kapok_api_tests"


@pytest.fixture
def stripe_app(store_url, tmp_path, monkeypatch, localstripe, webhook_endpoint):
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    provider = StripePaymentProvider("sk_test_kapok_api", WEBHOOK_SECRET, localstripe.url)
    localstripe.send_webhooks_to(webhook_endpoint.url, WEBHOOK_SECRET,
                                 ("payment_intent.succeeded",))
    app = create_app({"TESTING": True, "DATABASE_URL": store_url, "SECRET_KEY": "x" * 32,
                      "PAYMENT_PROVIDER": provider, "STRIPE_PUBLISHABLE_KEY": "pk_test_kapok_api",
                      "CARD_ATTEMPTS_PER_HOUR": 2})
    with view_worker(app.extensions["kapok_market"]):
        yield app
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


def test_an_integration_pays_by_card_with_the_client_secret_kapok_hands_back(
        stripe_app, webhook_endpoint):
    client = stripe_app.test_client()
    token = bearer(stripe_app.extensions["kapok_identity"].issue_token(LOGINS["buyer"][0], "erp"))
    listing = first_listing(client)
    order = client.post("/api/v1/orders", json={"listing_id": listing["listing_id"],
                                                 "tonnes": 4}, headers=token).get_json()

    started = client.post(f"/api/v1/orders/{order['order_id']}/payment", headers=token)
    assert started.status_code == 200, started.get_json()
    payment = started.get_json()
    assert (payment["provider"], payment["publishable_key"], payment["amount_minor"]) == (
        "stripe", "pk_test_kapok_api", order["total_minor"])
    assert payment["client_secret"].startswith(payment["payment_id"] + "_secret_")
    # Asking again: the same payment, not a second one.
    again = client.post(f"/api/v1/orders/{order['order_id']}/payment", headers=token)
    assert again.get_json()["payment_id"] == payment["payment_id"]

    # The integrator's Stripe.js confirms the payment with the buyer's card (here, Stripe's
    # test card, confirmed as Stripe.js would); Stripe then posts its signed webhook.
    provider = stripe_app.extensions["kapok_market"].payments
    assert provider.confirm_payment(payment["payment_id"], "pm_card_visa").status == "succeeded"
    delivery = webhook_endpoint.wait_for("payment_intent.succeeded", payment["payment_id"])
    posted = client.post("/webhooks/payments", data=delivery.body,
                         headers={"Stripe-Signature": delivery.signature,
                                  "Content-Type": "application/json"})
    assert posted.status_code == 200, posted.get_data(as_text=True)

    fulfilled = client.get(f"/api/v1/orders/{order['order_id']}", headers=token).get_json()
    assert fulfilled["state"] == "fulfilled"
    # Paid: nothing more to start.
    assert_error(client.post(f"/api/v1/orders/{order['order_id']}/payment", headers=token), 409)


def test_with_the_offline_provider_the_card_path_says_to_use_pay(as_role, anonymous):
    buyer = as_role("buyer")
    order = place_order(buyer, first_listing(anonymous)["listing_id"]).get_json()
    body = assert_error(buyer.post(f"/api/v1/orders/{order['order_id']}/payment"), 409)
    assert f"/api/v1/orders/{order['order_id']}/pay" in body["message"]
    assert_error(as_role("other_buyer").post(f"/api/v1/orders/{order['order_id']}/payment"),
                 404)


def test_cards_tried_per_organisation_and_hour_are_limited(stripe_app):
    buyer = stripe_app.test_client()
    log_in(buyer, *LOGINS["buyer"])
    listing = first_listing(buyer)
    placed = post_form(buyer, "/my/orders", {"listing_id": listing["listing_id"], "tonnes": "2",
                                             "nonce": "card-limit"})
    order_page = placed.headers["Location"]
    post_form(buyer, f"{order_page}/pay", {})  # the payment starts: the card form follows

    # Each view of the form sets up one card with Stripe: two an hour here.
    for _ in range(2):
        assert 'id="card-form"' in buyer.get(order_page).get_data(as_text=True)
    limited = buyer.get(order_page)
    assert limited.status_code == 429
    assert "Too many card attempts" in limited.get_data(as_text=True)
    assert 'id="card-form"' not in limited.get_data(as_text=True)

    # Charges are counted apart, also two an hour.
    token = csrf_token(buyer, "/my/orders")
    answers = [buyer.post(f"{order_page}/card", json={"payment_method": "pm_card_visa_x"},
                          headers={"X-CSRFToken": token}) for _ in range(3)]
    assert answers[2].status_code == 429
    assert "too many card attempts" in answers[2].get_json()["message"]
    # Another organisation is not held back by this one's attempts.
    other = stripe_app.test_client()
    log_in(other, *LOGINS["other_buyer"])
    placed = post_form(other, "/my/orders", {"listing_id": listing["listing_id"], "tonnes": "2",
                                             "nonce": "card-limit-b"})
    post_form(other, f"{placed.headers['Location']}/pay", {})
    assert 'id="card-form"' in other.get(placed.headers["Location"]).get_data(as_text=True)
