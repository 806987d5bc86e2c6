"""Rules of paying through Stripe, with the adapter talking to localstripe in its own process:
a card payment confirmed by a signed webhook fulfils the order exactly once, forged or replayed
deliveries change nothing, a declined card leaves the reservation standing, and a late payment
whose tonnes are gone is refunded through the provider."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from market.application import Marketplace
from market.domain.orders import FULFILLED, REFUNDED, RESERVED, IllegalTransitionError
from market.domain.payments import (
    DISPUTE_LOST,
    DISPUTE_OPENED,
    DISPUTE_WON,
    FAILED,
    REFUNDED as REFUND_REPORTED,
    SUCCEEDED,
    CardDeclinedError,
    InvalidWebhookError,
    PaymentError,
    PaymentEvent,
    PaymentProviderError,
)
from market.adapters.stripe_payments import StripePaymentProvider
from tests.conftest import expire_as_the_worker
from tests.integration.localstripe_server import (  # noqa: F401  (pytest fixtures)
    Delivery,
    LocalStripe,
    WebhookEndpoint,
    localstripe,
    localstripe_process,
    webhook_endpoint,
)
from tests.integration.market_scenario import (
    BUYER,
    OTHER_BUYER,
    Clock,
    Market,
    assert_sound,
    journal_entries,
    seed_market,
)

API_KEY = "sk_test_kapok_localstripe"
PUBLISHABLE_KEY = "pk_test_kapok_localstripe"
WEBHOOK_SECRET = "whsec_kapok_test_secret"
EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")


@dataclass
class StripeMarket(Market):
    provider: StripePaymentProvider
    webhooks: WebhookEndpoint

    def pay_by_card(self, order_id: str) -> str:
        """Starts the order's payment and pays it with Stripe's test Visa; the payment id."""
        payment_id = self.app.start_payment(order_id)["payment_id"]
        self.provider.confirm_payment(payment_id, "pm_card_visa")
        return payment_id

    def deliver(self, delivery: Delivery) -> str:
        """What our webhook endpoint does with a request: verify, then act once."""
        return self.app.handle_payment_event(
            self.provider.parse_webhook(delivery.body, delivery.signature))


def build_market(database_url: str, stripe: LocalStripe, webhooks: WebhookEndpoint,
                 on_offer: int = 500) -> StripeMarket:
    """The seeded marketplace paying through localstripe, whose webhooks reach ``webhooks``."""
    provider = StripePaymentProvider(API_KEY, WEBHOOK_SECRET, api_base=stripe.url)
    stripe.send_webhooks_to(webhooks.url, WEBHOOK_SECRET, EVENTS)
    clock = Clock()
    app = Marketplace(database=database_url, payments=provider, clock=clock)
    try:
        listing_id = seed_market(app, on_offer=on_offer)
    except BaseException:
        app.close()
        raise
    return StripeMarket(app, clock, listing_id, provider, webhooks)


@pytest.fixture
def market(sqlite_url, localstripe, webhook_endpoint):
    built = build_market(sqlite_url, localstripe, webhook_endpoint)
    yield built
    built.app.close()


def signed(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header as Stripe documents it: t=<unix time>, v1=HMAC-SHA256 of
    "<t>.<raw body>" with the endpoint's secret, in hex."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# --- Paying by card -------------------------------------------------------------------------


def test_a_card_payment_confirmed_by_a_signed_webhook_fulfils_the_order(market):
    # The buyer reserves 7 t; the marketplace creates a PaymentIntent for the total.
    order_id = market.order(7)
    started = market.app.start_payment(order_id)
    payment_id = started["payment_id"]
    intent = market.provider.client.v1.payment_intents.retrieve(payment_id)
    assert (started["provider"], started["test_mode"], started["amount_minor"]) == (
        "stripe", True, 13_125)
    assert (intent.amount, intent.currency, intent.metadata["order_id"]) == (
        13_125, "usd", order_id)
    assert started["client_secret"] == intent.client_secret

    # The card is charged; Stripe (here localstripe) then posts a signed webhook.
    assert market.provider.confirm_payment(payment_id, "pm_card_visa").status == "succeeded"
    delivery = market.webhooks.wait_for("payment_intent.succeeded", payment_id)
    event = market.provider.parse_webhook(delivery.body, delivery.signature)
    assert event == PaymentEvent(delivery.event["id"], SUCCEEDED, payment_id, order_id, 13_125,
                                 "USD")

    # Acting on the verified event delivers the tonnes and books the proceeds.
    assert market.app.handle_payment_event(event) == "fulfilled"
    order = market.app.get_order(order_id)
    assert (order.state, order.provider, order.payment_id) == (FULFILLED, "stripe", payment_id)
    assert market.app.ledger.get_account(BUYER).balance == 7
    assert market.counters() == (500, 0, 7, 493)
    assert [entry.reference for entry in journal_entries(market.app)] == [order_id]
    assert_sound(market.app)


def test_starting_to_pay_again_returns_the_orders_first_payment(market):
    order_id = market.order(7)
    first = market.app.start_payment(order_id)

    # A second click, or the page opened again: the same intent, looked up, not a new one
    # (localstripe ignores idempotency keys, so a second create would make a second intent).
    assert market.app.start_payment(order_id) == first
    assert market.app.get_order(order_id).payment_id == first["payment_id"]
    assert len(market.provider.client.v1.payment_intents.list().data) == 1


def give_card(stripe: LocalStripe, setup_client_secret: str, number: str) -> dict:
    """What Stripe.js does in the buyer's browser with a card form: confirm the SetupIntent
    with the card, using the client secret and the publishable key, never Kapok's secret key.
    Returns the SetupIntent as the provider answers (or its error)."""
    setup_id = setup_client_secret.split("_secret_")[0]
    body = json.dumps({"key": PUBLISHABLE_KEY, "use_stripe_sdk": True,
                       "client_secret": setup_client_secret,
                       "payment_method_data": {"type": "card", "card": {
                           "number": number, "exp_month": "12", "exp_year": "2034",
                           "cvc": "123"}}}).encode()
    request = urllib.request.Request(f"{stripe.url}/v1/setup_intents/{setup_id}/confirm",
                                     data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def test_a_card_given_to_stripe_in_the_browser_pays_the_order(market, localstripe):
    order_id = market.order(7)
    started = market.app.start_card_payment(order_id)
    assert started["setup_client_secret"].startswith("seti_")

    setup = give_card(localstripe, started["setup_client_secret"], "4242424242424242")
    assert setup["status"] == "succeeded"
    paid = market.app.confirm_card_payment(order_id, setup["payment_method"])
    assert (paid["status"], paid["payment_id"]) == ("succeeded", started["payment_id"])

    delivery = market.webhooks.wait_for("payment_intent.succeeded", started["payment_id"])
    assert market.deliver(delivery) == "fulfilled"
    assert market.app.get_order(order_id).state == FULFILLED
    # Confirming again: the order is no longer awaiting a payment.
    with pytest.raises(IllegalTransitionError, match="is fulfilled"):
        market.app.confirm_card_payment(order_id, setup["payment_method"])


def test_a_card_declined_when_charged_leaves_the_order_reserved(market, localstripe):
    order_id = market.order(7)
    started = market.app.start_card_payment(order_id)
    setup = give_card(localstripe, started["setup_client_secret"], "4000000000000341")
    assert setup["status"] == "succeeded"  # this test card is saved, then declined

    with pytest.raises(CardDeclinedError, match="declined"):
        market.app.confirm_card_payment(order_id, setup["payment_method"])
    assert market.app.get_order(order_id).state == RESERVED


def test_the_offline_provider_takes_no_card_details(sqlite_url):
    app = Marketplace(database=sqlite_url)
    try:
        listing_id = seed_market(app)
        order_id = app.place_order(listing_id, 3, BUYER.title(), BUYER)["order_id"]
        with pytest.raises(PaymentError, match="takes no card details"):
            app.start_card_payment(order_id)
        with pytest.raises(PaymentError, match="takes no card details"):
            app.confirm_card_payment(order_id, "pm_card_visa")
        assert app.get_order(order_id).payment_id is None  # nothing was started
    finally:
        app.close()


def test_the_same_delivery_again_is_a_duplicate_and_changes_nothing(market):
    order_id = market.order(7)
    payment_id = market.pay_by_card(order_id)
    delivery = market.webhooks.wait_for("payment_intent.succeeded", payment_id)
    market.deliver(delivery)
    position = market.position()

    assert market.deliver(delivery) == "duplicate"

    assert market.position() == position
    assert market.app.ledger.get_account(BUYER).balance == 7
    assert len(journal_entries(market.app)) == 1


@pytest.mark.parametrize("forgery", [
    "signed with another secret", "body changed after signing", "no signature header",
    "malformed signature header", "signed over six minutes ago",
])
def test_a_delivery_that_fails_verification_is_refused_and_changes_nothing(market, forgery):
    order_id = market.order(7)
    payment_id = market.pay_by_card(order_id)
    genuine = market.webhooks.wait_for("payment_intent.succeeded", payment_id)
    body = genuine.body
    forged = {
        "signed with another secret": lambda: Delivery(body, signed(body, "whsec_attacker")),
        "body changed after signing": lambda: Delivery(
            body.replace(b'"amount": 13125', b'"amount": 1'), genuine.signature),
        "no signature header": lambda: Delivery(body, None),
        "malformed signature header": lambda: Delivery(body, "v1=deadbeef"),
        "signed over six minutes ago": lambda: Delivery(
            body, signed(body, timestamp=int(time.time()) - 361)),
    }[forgery]()
    assert forged.body != body or forged.signature != genuine.signature
    position = market.position()

    with pytest.raises(InvalidWebhookError, match="Stripe-Signature"):
        market.deliver(forged)

    assert market.position() == position
    assert market.app.get_order(order_id).state == RESERVED


def test_a_declined_card_raises_a_payment_error_and_leaves_the_order_reserved(market):
    order_id = market.order(7)
    payment_id = market.app.start_payment(order_id)["payment_id"]

    with pytest.raises(PaymentError, match="declined"):
        market.provider.confirm_payment(payment_id, "pm_card_chargeCustomerFail")

    assert market.app.get_order(order_id).state == RESERVED
    assert market.counters() == (500, 7, 0, 493)
    # Stripe also reports the failure by webhook: noted, and the reservation still stands.
    delivery = market.webhooks.wait_for("payment_intent.payment_failed", payment_id)
    event = market.provider.parse_webhook(delivery.body, delivery.signature)
    assert (event.kind, event.order_id) == (FAILED, order_id)
    assert market.app.handle_payment_event(event) == "payment failed for reserved order"
    assert market.app.get_order(order_id).state == RESERVED
    assert market.app.ledger.get_account(BUYER).blocks == []
    assert_sound(market.app)


@pytest.fixture
def small_market(sqlite_url, localstripe, webhook_endpoint):
    built = build_market(sqlite_url, localstripe, webhook_endpoint, on_offer=10)
    yield built
    built.app.close()


def test_a_late_payment_whose_tonnes_are_gone_is_refunded_through_stripe(small_market):
    market = small_market
    # The buyer reserves all 10 t and pays by card, but the confirmation has not reached us
    # when the reservation expires...
    late = market.order(10)
    payment_id = market.pay_by_card(late)
    market.clock.advance(31)
    assert expire_as_the_worker(market.app) == [late]
    # ...and another buyer reserves the same 10 t.
    market.order(10, OTHER_BUYER)

    delivery = market.webhooks.wait_for("payment_intent.succeeded", payment_id)
    assert market.deliver(delivery).startswith("refunded (")

    # The whole payment is refunded at Stripe, and the order names that refund.
    order = market.app.get_order(late)
    refunds = market.provider.client.v1.refunds.list({"payment_intent": payment_id}).data
    assert [(refund.amount, refund.metadata["order_id"]) for refund in refunds] == [
        (order.total_minor, late)]
    assert (order.state, order.refund_id) == (REFUNDED, refunds[0].id)
    assert market.app.ledger.get_account(BUYER).blocks == []
    assert market.counters() == (10, 10, 0, 0)
    assert_sound(market.app)


# --- Refunds and disputes reported by Stripe -------------------------------------------------
# localstripe sends no charge.refunded or charge.dispute.* events, so these tests build the
# event payloads as Stripe documents them (an Event whose data.object is a Charge or a
# Dispute) and sign them as Stripe does, with the endpoint's secret.


def charge_refunded(payment_id: str, amount: int, refunded: int, metadata: dict) -> dict:
    return {
        "id": "evt_3MtwBwLkdIwHu7ix0kYtKx3h", "object": "event", "api_version": "2024-06-20",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": "charge.refunded",
        "data": {"object": {
            "id": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "object": "charge", "amount": amount,
            "amount_captured": amount, "amount_refunded": refunded, "captured": True,
            "currency": "usd", "metadata": metadata, "paid": True,
            "payment_intent": payment_id, "refunded": refunded == amount, "status": "succeeded",
        }},
    }


def dispute_created(payment_id: str, amount: int, metadata: dict) -> dict:
    return {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "api_version": "2024-06-20",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": "charge.dispute.created",
        "data": {"object": {
            "id": "dp_1MtJUT2eZvKYlo2CjwFxK1Zr", "object": "dispute", "amount": amount,
            "charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "currency": "usd",
            "is_charge_refundable": False, "livemode": False, "metadata": metadata,
            "payment_intent": payment_id, "reason": "fraudulent", "status": "needs_response",
        }},
    }


def dispute_closed(payment_id: str, amount: int, status: str) -> dict:
    event = dispute_created(payment_id, amount, {})
    event["id"], event["type"] = f"evt_dispute_{status}", "charge.dispute.closed"
    event["data"]["object"]["status"] = status
    return event


def stripe_provider() -> StripePaymentProvider:
    # Parsing a webhook makes no API call: the API address is never used here.
    return StripePaymentProvider(API_KEY, WEBHOOK_SECRET, api_base="http://127.0.0.1:9")


@pytest.mark.parametrize("event, kind, amount, order_id", [
    (charge_refunded("pi_1", 13_125, 13_125, {"order_id": "KAP-ORD-1"}), REFUND_REPORTED,
     13_125, "KAP-ORD-1"),
    (charge_refunded("pi_1", 13_125, 5_000, {}), REFUND_REPORTED, 5_000, None),
    (dispute_created("pi_1", 13_125, {}), DISPUTE_OPENED, 13_125, None),
    (dispute_closed("pi_1", 13_125, "lost"), DISPUTE_LOST, 13_125, None),
    (dispute_closed("pi_1", 13_125, "won"), DISPUTE_WON, 13_125, None),
], ids=["full refund", "partial refund", "dispute opened", "dispute lost", "dispute won"])
def test_refunds_and_disputes_in_stripes_documented_payloads_are_read(event, kind, amount,
                                                                         order_id):
    body = json.dumps(event).encode()

    parsed = stripe_provider().parse_webhook(body, signed(body))

    assert parsed == PaymentEvent(event["id"], kind, "pi_1", order_id, amount, "USD")


def test_an_event_kind_we_do_not_act_on_is_read_as_nothing():
    event = charge_refunded("pi_1", 100, 0, {}) | {"type": "charge.succeeded"}
    body = json.dumps(event).encode()

    assert stripe_provider().parse_webhook(body, signed(body)) is None


@pytest.mark.parametrize("body", [
    b"not json", b"", b"[]", b"[1, 2]", b"42", b"null", b'"charge.refunded"',
    b'{"id": "evt_1", "type": ["charge.refunded"]}',
    b'{"id": "evt_1", "type": "charge.refunded", "data": []}',
    json.dumps(charge_refunded("pi_1", 100, 50, {})).replace(
        '"amount_refunded": 50', '"amount_refunded": ' + "9" * 5000).encode(),
    json.dumps(charge_refunded("pi_1", 100, 50, {})).replace(
        '"amount_refunded": 50', '"amount_refunded": 50.5').encode(),
], ids=["text", "empty", "empty array", "array", "number", "null", "string", "type a list",
        "data a list", "5,000-digit amount", "fractional amount"])
def test_a_signed_body_that_is_not_an_event_is_refused(body):
    with pytest.raises(InvalidWebhookError):
        stripe_provider().parse_webhook(body, signed(body))


@pytest.mark.parametrize("report", ["refund", "dispute"])
def test_a_refund_or_lost_dispute_reported_by_stripe_refunds_the_order_and_recovers_credits(
        market, report):
    # An order is paid by card and delivered...
    order_id = market.order(7)
    payment_id = market.pay_by_card(order_id)
    market.deliver(market.webhooks.wait_for("payment_intent.succeeded", payment_id))
    # ...then Stripe reports a refund or a dispute closed lost, naming only the payment.
    event = (charge_refunded(payment_id, 13_125, 13_125, {}) if report == "refund"
             else dispute_closed(payment_id, 13_125, "lost"))
    body = json.dumps(event).encode()

    outcome = market.deliver(Delivery(body, signed(body)))

    # The order is found through its payment and refunded; the buyer still held the 7 t,
    # so they go back to the inventory and the farms' allocation is withdrawn.
    order = market.app.get_order(order_id)
    assert outcome == (f"{REFUND_REPORTED if report == 'refund' else DISPUTE_LOST}: order "
                       f"refunded; 7 t recovered to the inventory")
    assert (order.state, order.refund_id) == (REFUNDED, event["id"])
    assert market.app.ledger.get_account(order.buyer_account).balance == 0
    assert market.deliver(Delivery(body, signed(body))) == "duplicate"
    assert_sound(market.app)


def test_a_provider_that_cannot_be_reached_is_a_provider_error_not_a_decline(market):
    order_id = market.order(7)
    unreachable = StripePaymentProvider(API_KEY, WEBHOOK_SECRET, "http://127.0.0.1:9")
    with pytest.raises(PaymentProviderError, match="payment provider error"):
        unreachable.create_payment(order_id, 13_125, "USD", "7 t")
