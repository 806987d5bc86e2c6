"""The payment port: what the market needs from a payment provider, and the offline one.

Orders never talk to Stripe directly: they call a ``PaymentProvider``. The Stripe adapter
(``market/adapters/stripe_payments.py``, the only module that imports ``stripe``) is used when keys are
configured; otherwise the offline provider takes clearly labelled test payments, so the
whole journey works on a fresh machine with no network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.errors import InvalidInputError, PaymentDeclinedError, UpstreamError
from market.domain.errors import MarketError

SUCCEEDED = "payment_succeeded"
FAILED = "payment_failed"
REFUNDED = "refunded"  # its amount: the provider's running total refunded of the payment
# Disputes follow the card networks' lifecycle: opened, then closed won or lost.
DISPUTE_OPENED = "dispute_opened"
DISPUTE_WON = "dispute_won"
DISPUTE_LOST = "dispute_lost"  # its amount: what the dispute took back
KINDS = (SUCCEEDED, FAILED, REFUNDED, DISPUTE_OPENED, DISPUTE_WON, DISPUTE_LOST)
MAX_MINOR = 10 ** 15  # more than any payment (a trillion and more in major units)
MAX_ID = 255


class PaymentError(MarketError, InvalidInputError):
    """The provider refused or failed to take the payment."""


class CardDeclinedError(PaymentError, PaymentDeclinedError):
    """The card's bank or the provider declined the card: the buyer may try another."""


class PaymentProviderError(PaymentError, UpstreamError):
    """The provider could not be reached or answered with an error: nothing was charged
    that Kapok knows of; the same request may be tried again later."""


class InvalidWebhookError(MarketError, InvalidInputError):
    """A webhook whose signature or content cannot be trusted: nothing is changed."""


@dataclass(frozen=True)
class Payment:
    payment_id: str
    status: str  # requires_payment_method, requires_confirmation, succeeded, canceled ...
    amount_minor: int
    currency: str
    client_secret: str | None = None
    test_mode: bool = False
    customer_id: str | None = None  # the provider's customer a card is saved to, if any


@dataclass(frozen=True)
class PaymentEvent:
    """What a provider tells us happened to a payment (from a verified webhook)."""

    event_id: str
    kind: str  # one of KINDS
    payment_id: str
    order_id: str | None
    amount_minor: int
    currency: str
    fee_minor: int | None = None


def checked_event(fields: object) -> PaymentEvent:
    """The event a signed body's ``fields`` describe. Signed is not well-formed: raises
    InvalidWebhookError naming every field that is not what the market can act on."""
    if not isinstance(fields, dict):
        raise InvalidWebhookError(
            f"malformed webhook body: a JSON object expected, not {type(fields).__name__}")
    problems = [f"unexpected field {name!r}" for name in sorted(fields, key=str)
                if name not in PaymentEvent.__dataclass_fields__]
    texts = {"event_id": False, "payment_id": False, "order_id": True}
    for name, optional in texts.items():
        value = fields.get(name)
        if not (optional and value is None) and not (
                isinstance(value, str) and 0 < len(value) <= MAX_ID and value.isprintable()):
            problems.append(f"{name} must be 1-{MAX_ID} printable characters")
    if fields.get("kind") not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    for name in ("amount_minor", "fee_minor"):
        value = fields.get(name)
        if name == "fee_minor" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
            problems.append(f"{name} must be whole minor units from 0 to {MAX_MINOR}")
    currency = fields.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii()
            and currency.isalpha() and currency.isupper()):
        problems.append("currency must be a three-letter code such as USD")
    if problems:
        raise InvalidWebhookError("malformed webhook body: " + "; ".join(problems))
    return PaymentEvent(**fields)


class PaymentProvider(ABC):
    name: str
    takes_card_details = False  # whether start_card_setup gives the browser a card form

    def unfit_for_production(self) -> str | None:
        """Why this provider must not take a production site's payments, or None. A provider
        is unfit until it says otherwise."""
        return f"the {self.name} provider is not one that takes real payments"

    @abstractmethod
    def create_payment(self, order_id: str, amount_minor: int, currency: str,
                       description: str) -> Payment:
        """Creates (or, for the same order, returns again) the payment for an order."""

    @abstractmethod
    def confirm_payment(self, payment_id: str, payment_method: str) -> Payment:
        """Pays with a payment method (cards are collected by the provider's own page)."""

    def retrieve_payment(self, payment_id: str) -> Payment:
        """The payment as the provider holds it now."""
        raise PaymentError(f"the {self.name} provider cannot look payments up")

    def start_card_setup(self, order_id: str, payment: Payment) -> str:
        """A client secret with which the buyer's browser gives the card to the provider
        (never to Kapok), saved to the payment's customer for ``confirm_payment``."""
        raise PaymentError(f"the {self.name} provider takes no card details")

    @abstractmethod
    def refund(self, payment_id: str, order_id: str, amount_minor: int | None = None) -> str:
        """Refunds a payment (all of it by default); returns the refund id."""

    @abstractmethod
    def parse_webhook(self, payload: bytes, signature_header: str | None) -> PaymentEvent | None:
        """The event a signed webhook reports, None for kinds we ignore.

        Raises InvalidWebhookError for a missing or bad signature or malformed body."""


class OfflinePaymentProvider(PaymentProvider):
    """Test payments with no network, for the embedded demo only: every payment is labelled a
    test payment, and confirming one with ``pm_offline_test`` succeeds at once. It keeps no
    state, so any web worker can confirm a payment another one created."""

    name = "offline"
    TEST_METHOD = "pm_offline_test"

    def __init__(self, webhook_secret: str | None = None):
        # Without one, a secret of this process alone: its webhooks are signed by nobody
        # else (the demo's own sales settle directly, without a webhook).
        self._secret = (webhook_secret or secrets.token_urlsafe(32)).encode()

    def unfit_for_production(self) -> str | None:
        return ("the offline provider takes test payments only: set KAPOK_STRIPE_SECRET_KEY "
                "and KAPOK_STRIPE_WEBHOOK_SECRET for real payments (or KAPOK_ENV=development "
                "to run the demo)")

    @staticmethod
    def payment_id_for(order_id: str) -> str:
        # Deterministic, like an idempotency key: the same order never gets two payments.
        return "offline_pi_" + uuid5(NAMESPACE_URL, f"kapok-order:{order_id}").hex[:24]

    def create_payment(self, order_id, amount_minor, currency, description) -> Payment:
        return Payment(self.payment_id_for(order_id), "requires_confirmation", amount_minor,
                       currency, test_mode=True)

    def confirm_payment(self, payment_id, payment_method) -> Payment:
        if payment_method != self.TEST_METHOD:
            raise PaymentError(f"the offline test provider only accepts {self.TEST_METHOD}")
        return Payment(payment_id, "succeeded", 0, "", test_mode=True)

    def refund(self, payment_id, order_id, amount_minor=None) -> str:
        return "offline_re_" + uuid5(NAMESPACE_URL, f"refund:{payment_id}").hex[:24]

    def sign(self, payload: bytes, timestamp: int | None = None) -> str:
        """A Stripe-style signature header, so the webhook path is the same for both."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self._secret, f"{timestamp}.".encode() + payload, hashlib.sha256)
        return f"t={timestamp},v1={mac.hexdigest()}"

    def event_payload(self, event: PaymentEvent) -> bytes:
        return json.dumps(event.__dict__, sort_keys=True).encode()

    def parse_webhook(self, payload, signature_header) -> PaymentEvent | None:
        try:
            parts = dict(item.split("=", 1) for item in (signature_header or "").split(","))
            expected = self.sign(payload, int(parts["t"])).split("v1=")[1]
        except (KeyError, ValueError, IndexError):
            raise InvalidWebhookError("missing or malformed signature header") from None
        if not hmac.compare_digest(expected, parts["v1"]):
            raise InvalidWebhookError("bad webhook signature")
        return checked_event(json_body(payload))


def json_body(payload: bytes) -> object:
    """A signed body parsed as JSON; raises InvalidWebhookError if it is not JSON (or holds
    a number too long to read)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as error:  # ValueError: not UTF-8 or not JSON
        raise InvalidWebhookError(f"malformed webhook body: {error}") from None
