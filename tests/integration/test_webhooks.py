"""The payments webhook: a signed event settles the order once; anything unsigned changes
nothing and gets a 400, never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from ledger.demo import demo_steps
from market.demo import market_demo_steps
from market.domain.payments import SUCCEEDED, OfflinePaymentProvider, PaymentEvent
from market.adapters.stripe_payments import StripePaymentProvider
from web import create_app


@pytest.fixture
def app(sqlite_url):
    provider = OfflinePaymentProvider("test-webhook-secret")
    app = create_app({"DATABASE_URL": sqlite_url, "PAYMENT_PROVIDER": provider, "TESTING": True})
    market = app.extensions["kapok_market"]
    for _, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    yield app
    market.close()


def reserved_order(app) -> dict:
    market = app.extensions["kapok_market"]
    listing = market.listings()[2]
    order = market.place_order(str(listing.id), 12, "Lima Logistics", "lima-logistics")
    return {**order, **market.start_payment(order["order_id"])}


def signed(app, event: PaymentEvent, secret_ok: bool = True):
    provider = app.extensions["kapok_market"].payments
    body = provider.event_payload(event)
    signature = provider.sign(body) if secret_ok else OfflinePaymentProvider("wrong").sign(body)
    return body, {"Stripe-Signature": signature, "Content-Type": "application/json"}


def test_a_signed_payment_event_fulfils_the_order_once(app):
    order = reserved_order(app)
    event = PaymentEvent("evt_1", SUCCEEDED, order["payment_id"], order["order_id"],
                         order["total_minor"], "USD")
    body, headers = signed(app, event)
    client = app.test_client()

    first = client.post("/webhooks/payments", data=body, headers=headers)
    again = client.post("/webhooks/payments", data=body, headers=headers)

    assert first.status_code == 200 and first.json["outcome"] == "fulfilled"
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"
    market = app.extensions["kapok_market"]
    assert market.get_order(order["order_id"]).state == "fulfilled"
    assert market.ledger.get_account("lima-logistics").balance >= 12


@pytest.mark.parametrize("body, headers", [
    (b"{}", {}),
    (b"not json", {"Stripe-Signature": "t=1,v1=00"}),
    (b'{"event_id": "x"}', {"Stripe-Signature": "garbage"}),
])
def test_unsigned_or_malformed_webhooks_get_400_and_change_nothing(app, body, headers):
    market = app.extensions["kapok_market"]
    before = market.recorder.max_notification_id()

    response = app.test_client().post("/webhooks/payments", data=body, headers=headers)

    assert response.status_code == 400 and response.json["message"]
    assert market.recorder.max_notification_id() == before


def test_a_webhook_signed_with_another_secret_changes_nothing(app):
    order = reserved_order(app)
    market = app.extensions["kapok_market"]
    before = market.recorder.max_notification_id()
    body, headers = signed(app, PaymentEvent("evt_2", SUCCEEDED, order["payment_id"],
                                             order["order_id"], order["total_minor"], "USD"),
                           secret_ok=False)

    response = app.test_client().post("/webhooks/payments", data=body, headers=headers)

    assert response.status_code == 400
    assert market.recorder.max_notification_id() == before
    assert market.get_order(order["order_id"]).state == "reserved"


def test_a_signed_event_with_a_malformed_body_is_a_400(app):
    provider = app.extensions["kapok_market"].payments
    body = json.dumps({"unexpected": 1}).encode()
    response = app.test_client().post("/webhooks/payments", data=body,
                                      headers={"Stripe-Signature": provider.sign(body)})
    assert response.status_code == 400


# --- the published key and signed heads (the audit log's public face) -------------------------


def test_the_public_key_and_the_latest_signed_head_are_published(app, tmp_path, monkeypatch):
    from ledger.audit.keys import SigningKey, generate_key
    from ledger.audit.log import AuditLog
    from ledger.audit.verifier import verify_signature

    key_file = tmp_path / "keys" / "tree.pem"
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(key_file))
    client = app.test_client()
    assert client.get("/audit/public-key.pem").status_code == 404  # no key configured yet
    generate_key(key_file)
    market = app.extensions["kapok_market"]
    assert client.get("/audit/tree-head").status_code == 404  # nothing signed yet
    AuditLog(market).follow(SigningKey.load(key_file))

    pem = client.get("/audit/public-key.pem")
    head = client.get("/audit/tree-head").json

    assert pem.status_code == 200 and pem.data.startswith(b"-----BEGIN PUBLIC KEY")
    from ledger.audit.verifier import tree_head_message

    message = tree_head_message(head["tree_size"], head["timestamp_ms"], bytes.fromhex(head["root_hash"]))
    assert verify_signature(pem.data, message, bytes.fromhex(head["signature"]))
    assert head["tree_size"] == market.recorder.max_notification_id()


def test_a_retirement_proof_is_served_and_unknown_ids_are_404(app, tmp_path, monkeypatch):
    from ledger.audit.keys import SigningKey, generate_key
    from ledger.audit.log import AuditLog
    from ledger.audit.verifier import verify_proof_file

    key_file = tmp_path / "keys" / "tree.pem"
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(key_file))
    generate_key(key_file)
    market = app.extensions["kapok_market"]
    retirement_id = market.caught_up_view().recorder.query(
        "SELECT retirement_id FROM kapok_retirements", {})[0]["retirement_id"]
    AuditLog(market).follow(SigningKey.load(key_file))
    client = app.test_client()

    proof = client.get(f"/audit/proofs/{retirement_id}.json")

    assert proof.status_code == 200
    assert verify_proof_file(proof.json, key_file.with_name("tree.pub.pem").read_bytes()) == []
    assert client.get("/audit/proofs/KAP-RET-NOPE.json").status_code == 404


# --- signed, yet not an event: 400, for either provider ------------------------------------

STRIPE_SECRET = "whsec_test_webhooks"
EVENT = {"event_id": "evt_x", "kind": SUCCEEDED, "payment_id": "pi_x", "order_id": None,
         "amount_minor": 100, "currency": "USD", "fee_minor": None}
STRIPE_EVENT = {"id": "evt_x", "type": "charge.refunded", "data": {"object": {
    "payment_intent": "pi_x", "amount_refunded": 100, "currency": "usd"}}}


def stripe_signed(body: bytes) -> str:
    timestamp = int(time.time())
    mac = hmac.new(STRIPE_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def five_thousand_digits(event: dict, field: str) -> bytes:
    return json.dumps(event).replace(f'"{field}": 100', f'"{field}": ' + "9" * 5000).encode()


@pytest.fixture(params=["offline", "stripe"])
def signing_app(request, sqlite_url):
    """An empty store behind the webhook, and how its provider signs a body."""
    if request.param == "offline":
        provider = OfflinePaymentProvider("test-webhook-secret")
        sign = provider.sign
    else:
        # Reading a webhook makes no API call: the address is never used.
        provider = StripePaymentProvider("sk_test_x", STRIPE_SECRET, "http://127.0.0.1:9")
        sign = stripe_signed
    app = create_app({"DATABASE_URL": sqlite_url, "PAYMENT_PROVIDER": provider, "TESTING": True})
    yield app, request.param, sign
    app.extensions["kapok_market"].close()


@pytest.mark.parametrize("body", [
    b"[]", b'[{"event_id": "evt_x"}]', b"42", b"null", b'"payment_succeeded"', b"[" * 100_000,
    "five thousand digits", "amount as text", "fractional amount",
], ids=["empty array", "array", "number", "null", "string", "deep array", "5,000 digits",
        "amount as text", "fractional amount"])
def test_a_signed_body_that_is_not_an_event_is_a_400_with_a_message(signing_app, body):
    app, provider, sign = signing_app
    event, field = (EVENT, "amount_minor") if provider == "offline" else (
        STRIPE_EVENT, "amount_refunded")
    if body == "five thousand digits":
        body = five_thousand_digits(event, field)
    elif body in ("amount as text", "fractional amount"):
        body = json.dumps(event).replace(f'"{field}": 100', f'"{field}": ' + (
            '"100"' if body == "amount as text" else "100.5")).encode()
    market = app.extensions["kapok_market"]
    before = market.recorder.max_notification_id()

    response = app.test_client().post("/webhooks/payments", data=body, headers={
        "Stripe-Signature": sign(body), "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json["message"].startswith(("malformed webhook body", "unexpected"))
    assert market.recorder.max_notification_id() == before


def test_a_signed_event_for_another_orders_payment_is_answered_as_a_mismatch(app):
    order, other = reserved_order(app), reserved_order(app)
    event = PaymentEvent("evt_crossed", SUCCEEDED, other["payment_id"], order["order_id"],
                         order["total_minor"], "USD")
    body, headers = signed(app, event)

    response = app.test_client().post("/webhooks/payments", data=body, headers=headers)

    # Answered, so the provider stops retrying; changed nothing but a flag for operators.
    assert response.status_code == 200 and response.json["outcome"] == "mismatch"
    market = app.extensions["kapok_market"]
    assert market.get_order(order["order_id"]).state == "reserved"
    assert market.get_order(other["order_id"]).state == "reserved"
    assert "evt_crossed" in market.get_order(order["order_id"]).flags[0]
