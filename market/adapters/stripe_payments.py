"""The Stripe adapter of the payment port: PaymentIntents through the official SDK (v16).

The only module that imports ``stripe``. Amounts are integer minor units; every create call
carries a deterministic idempotency key (``order-<id>-payment``) so a retry after a crash
never charges twice; webhooks are verified on the raw body with the endpoint secret.
"""

from __future__ import annotations

import stripe

from market.domain.payments import (
    DISPUTE_LOST,
    DISPUTE_OPENED,
    DISPUTE_WON,
    FAILED,
    REFUNDED,
    SUCCEEDED,
    CardDeclinedError,
    InvalidWebhookError,
    Payment,
    PaymentError,
    PaymentEvent,
    PaymentProvider,
    PaymentProviderError,
    checked_event,
    json_body,
)


class StripePaymentProvider(PaymentProvider):
    name = "stripe"
    takes_card_details = True

    def __init__(self, api_key: str, webhook_secret: str, api_base: str | None = None):
        options = {"base_addresses": {"api": api_base}} if api_base else {}
        self.client = stripe.StripeClient(api_key, **options)
        self.webhook_secret = webhook_secret
        self.test_mode = api_key.startswith("sk_test_")

    def unfit_for_production(self) -> str | None:
        if not self.webhook_secret:
            # Stripe's signature check with an empty secret is a MAC anyone can compute.
            return ("KAPOK_STRIPE_WEBHOOK_SECRET is not set: without the endpoint's secret "
                    "anyone could forge payment events")
        return None

    def create_payment(self, order_id, amount_minor, currency, description) -> Payment:
        # A customer for the order: the card the buyer enters is saved to it (a SetupIntent,
        # see start_card_setup), then pays this PaymentIntent; Stripe refuses a second use of
        # a card that belongs to no customer.
        customer = self._call(
            self.client.v1.customers.create,
            {"description": f"Kapok order {order_id}", "metadata": {"order_id": order_id}},
            {"idempotency_key": f"order-{order_id}-customer"},
        )
        intent = self._call(
            self.client.v1.payment_intents.create,
            # The description rides in metadata: localstripe refuses the top-level field.
            {"amount": amount_minor, "currency": currency.lower(), "customer": customer.id,
             "metadata": {"order_id": order_id, "description": description}},
            {"idempotency_key": f"order-{order_id}-payment"},
        )
        return self._payment(intent)

    def retrieve_payment(self, payment_id) -> Payment:
        return self._payment(self._call(self.client.v1.payment_intents.retrieve, payment_id))

    def start_card_setup(self, order_id, payment) -> str:
        if not payment.customer_id:
            raise PaymentError(f"payment {payment.payment_id} has no customer to save a card to")
        # A new one each time the card form is shown: one that took a card already (a card
        # then declined when charged) cannot take another.
        setup = self._call(
            self.client.v1.setup_intents.create,
            {"customer": payment.customer_id, "payment_method_types": ["card"],
             "usage": "on_session", "metadata": {"order_id": order_id}},
        )
        return setup.client_secret

    def confirm_payment(self, payment_id, payment_method) -> Payment:
        # Attach, then confirm: the same on Stripe, and what localstripe supports.
        self._call(self.client.v1.payment_intents.update, payment_id,
                   {"payment_method": payment_method})
        intent = self._call(self.client.v1.payment_intents.confirm, payment_id)
        return self._payment(intent)

    def refund(self, payment_id, order_id, amount_minor=None) -> str:
        params = {"payment_intent": payment_id, "metadata": {"order_id": order_id}}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self._call(self.client.v1.refunds.create, params,
                            {"idempotency_key": f"order-{order_id}-refund"})
        return refund.id

    def parse_webhook(self, payload, signature_header) -> PaymentEvent | None:
        # The signature first, on the raw bytes; then the body as plain JSON, whatever its
        # shape (the SDK's own event builder fails on a body that is not an object).
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header or "",
                                                  self.webhook_secret,
                                                  stripe.Webhook.DEFAULT_TOLERANCE)
        except stripe.SignatureVerificationError:
            raise InvalidWebhookError("bad or missing Stripe-Signature") from None
        event = json_body(payload)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise InvalidWebhookError("malformed webhook body: not a Stripe event")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        kind = self._kind(event["type"], obj)
        if kind is None:
            return None
        if not isinstance(obj, dict):
            raise InvalidWebhookError(f"unexpected {event['type']} payload: no object")
        if kind in (SUCCEEDED, FAILED):
            payment_id, amount = obj.get("id"), obj.get("amount")
        elif kind == REFUNDED:  # a charge: its running total refunded
            payment_id, amount = obj.get("payment_intent"), obj.get("amount_refunded")
        else:  # a dispute: what it holds back
            payment_id, amount = obj.get("payment_intent"), obj.get("amount")
        currency = obj.get("currency")
        metadata = obj.get("metadata")
        return checked_event({
            "event_id": event.get("id"), "kind": kind, "payment_id": payment_id,
            "order_id": metadata.get("order_id") if isinstance(metadata, dict) else None,
            "amount_minor": amount,
            "currency": currency.upper() if isinstance(currency, str) else currency})

    @staticmethod
    def _kind(event_type: str, obj: object) -> str | None:
        """Our kind of a Stripe event of ``event_type`` about ``obj``; None for those we
        ignore. A dispute changes nothing until it closes lost (``charge.dispute.closed``
        with status ``lost``)."""
        if event_type == "charge.dispute.closed":
            status = obj.get("status") if isinstance(obj, dict) else None
            return {"lost": DISPUTE_LOST, "won": DISPUTE_WON}.get(status)
        return {
            "payment_intent.succeeded": SUCCEEDED,
            "payment_intent.payment_failed": FAILED,
            "charge.refunded": REFUNDED,
            "charge.dispute.created": DISPUTE_OPENED,
        }.get(event_type)

    def _payment(self, intent) -> Payment:
        customer = getattr(intent, "customer", None)
        return Payment(intent.id, intent.status, intent.amount, str(intent.currency).upper(),
                       getattr(intent, "client_secret", None), test_mode=self.test_mode,
                       customer_id=getattr(customer, "id", customer))  # an id, or expanded

    @staticmethod
    def _call(method, *args):
        try:
            return method(*args)
        except stripe.CardError as error:
            raise CardDeclinedError(f"card declined: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise PaymentProviderError(
                f"payment provider error: {error.user_message or error}") from None
