"""Orders: a company's purchase of tonnes, from reservation through payment to delivery.

    draft -> reserved -> paid -> fulfilled
    reserved -> expired (reservation released) -> reserved (a late payment, if still available)
    draft | reserved -> cancelled;  paid | fulfilled | expired | cancelled -> refunded
    (a payment that arrives for an expired or cancelled order whose tonnes are gone)

Whatever its state, an order remembers what its provider reported giving back (refunds, lost
disputes: ``reversal_due``) and how much of it the sale has reversed so far
(``reversed_minor``, with the tonnes taken back); a fulfilled order partly refunded stays
fulfilled. Operators' attention is drawn by ``flags`` (a dispute opened, an event that did not
match the order).

Reserved tonnes sit in an escrow account of the ledger, so inventory is always exact and the
auditor sees reservations too. Its name is a one-way digest of the order id: a retirement
recorded from it (and its public proof) does not reveal the buyer's order.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import ConflictError, NotFoundError
from ledger.domain.ids import named_id
from ledger.domain.retirements import RetirementClaim
from market.domain.errors import MarketError

DRAFT, RESERVED, PAID, FULFILLED = "draft", "reserved", "paid", "fulfilled"
EXPIRED, CANCELLED, REFUNDED = "expired", "cancelled", "refunded"
TERMINAL = (FULFILLED, CANCELLED, REFUNDED)

# Which states each command may start from.
ALLOWED_FROM = {
    "reserve": (DRAFT, EXPIRED),
    "attach_payment": (DRAFT, RESERVED),
    "pay": (RESERVED,),
    "fulfil": (PAID,),
    "expire": (RESERVED,),
    "cancel": (DRAFT, RESERVED),
    "refund": (PAID, FULFILLED, EXPIRED, CANCELLED),
}


class IllegalTransitionError(MarketError, ConflictError):
    pass


class UnknownOrderError(MarketError, NotFoundError):
    pass


def order_aggregate_id(order_id: str) -> UUID:
    return named_id("order", order_id.strip().upper())


def payment_index_id(payment_id: str) -> UUID:
    return named_id("payment", payment_id)


class Order(Aggregate):
    # Containers of immutable values only: a copy for a command copies them shallowly
    # (ledger.application.copy_aggregate).
    flat_containers = frozenset({"serials", "flags"})

    @staticmethod
    def create_id(order_id: str, **_: object) -> UUID:
        return order_aggregate_id(order_id)

    @event("Placed")
    def __init__(self, order_id: str, buyer_org: str, buyer_account: str, listing_id: str,
                 project: str, vintage: int, tonnes: int, unit_price: Decimal, total_minor: int,
                 currency: str, retirement: RetirementClaim | None):
        self.order_id = order_id
        self.buyer_org = buyer_org
        self.buyer_account = buyer_account
        self.listing_id = listing_id
        self.project = project
        self.vintage = vintage
        self.tonnes = tonnes
        self.unit_price = unit_price
        self.total_minor = total_minor
        self.currency = currency
        self.retirement = retirement
        self.state = DRAFT
        self.escrow_account: str | None = None
        self.serials: list[str] = []
        self.reserved_until: datetime | None = None
        self.provider: str | None = None
        self.payment_id: str | None = None
        self.paid_minor = 0
        self.delivery_reference: str | None = None
        self.refund_id: str | None = None
        self.note = ""
        self.provider_refunded_minor = 0  # the provider's running total of refunds
        self.disputes_lost_minor = 0  # what lost disputes took back
        self.reversed_minor = 0  # of the money given back, what the sale has reversed
        self.tonnes_taken_back = 0  # tonnes that reversal accounted for (back or not)
        self.flags: list[str] = []  # for operators: disputes, mismatched events

    def check_can(self, command: str) -> None:
        """Raises IllegalTransitionError unless the order's state allows ``command`` (a key
        of ``ALLOWED_FROM``): for a use case to refuse before it asks a payment provider."""
        if self.state not in ALLOWED_FROM[command]:
            raise IllegalTransitionError(
                f"order {self.order_id} is {self.state}: cannot {command.replace('_', ' ')} "
                f"(only when {' or '.join(ALLOWED_FROM[command])})"
            )

    @property
    def escrow_name(self) -> str:
        """The escrow account its reservation recorded (orders reserved before the names
        became digests keep ``escrow-<order id>``), else the one it will record."""
        return self.escrow_account or self.escrow_name_of(self.order_id)

    @staticmethod
    def escrow_name_of(order_id: str) -> str:
        """A new order's escrow account: the same for the same order, and no way back to it."""
        digest = hashlib.sha256(f"kapok-escrow:{order_id.strip().upper()}".encode())
        return f"escrow-{digest.hexdigest()[:20]}"

    def reserve(self, serials: list[str], until: datetime) -> None:
        self.check_can("reserve")
        self._reserved(self.escrow_name, list(serials), until)

    @event("Reserved")
    def _reserved(self, escrow_account: str, serials: list[str], until: datetime) -> None:
        self.escrow_account, self.serials, self.reserved_until = escrow_account, serials, until
        self.state = RESERVED

    def attach_payment(self, provider: str, payment_id: str) -> None:
        self.check_can("attach_payment")
        if self.payment_id not in (None, payment_id):
            raise IllegalTransitionError(f"order {self.order_id} already has payment {self.payment_id}")
        if self.payment_id is None:
            self._payment_attached(provider, payment_id)

    @event("PaymentAttached")
    def _payment_attached(self, provider: str, payment_id: str) -> None:
        self.provider, self.payment_id = provider, payment_id

    def pay(self, event_id: str, amount_minor: int) -> None:
        self.check_can("pay")
        if amount_minor != self.total_minor:
            raise IllegalTransitionError(
                f"order {self.order_id}: paid {amount_minor} but the total is {self.total_minor}"
            )
        self._paid(event_id, amount_minor)

    @event("Paid")
    def _paid(self, event_id: str, amount_minor: int) -> None:
        self.paid_minor, self.state = amount_minor, PAID

    def fulfil(self, delivery_reference: str) -> None:
        self.check_can("fulfil")
        self._fulfilled(delivery_reference)

    @event("Fulfilled")
    def _fulfilled(self, delivery_reference: str) -> None:
        self.delivery_reference, self.state = delivery_reference, FULFILLED

    def expire(self) -> None:
        self.check_can("expire")
        self._expired()

    @event("Expired")
    def _expired(self) -> None:
        self.state, self.serials = EXPIRED, []

    def cancel(self, reason: str) -> None:
        self.check_can("cancel")
        self._cancelled(reason)

    @event("Cancelled")
    def _cancelled(self, reason: str) -> None:
        self.state, self.note, self.serials = CANCELLED, reason, []

    def refund(self, refund_id: str, reason: str) -> None:
        self.check_can("refund")
        self._refunded(refund_id, reason)

    @event("Refunded")
    def _refunded(self, refund_id: str, reason: str) -> None:
        self.state, self.refund_id, self.note = REFUNDED, refund_id, reason
        self.reversed_minor, self.tonnes_taken_back = self.total_minor, self.tonnes

    @property
    def reversal_due(self) -> int:
        """Money the provider gave back, never more than was paid."""
        return min(self.total_minor, self.provider_refunded_minor + self.disputes_lost_minor)

    def note_refunds(self, refunded_total_minor: int) -> None:
        """The provider's running total of refunds of this payment (events may come late or
        out of order: a smaller total than one already known changes nothing)."""
        if refunded_total_minor > self.provider_refunded_minor:
            self._refunds_noted(refunded_total_minor)

    @event("RefundsNoted")
    def _refunds_noted(self, refunded_total_minor: int) -> None:
        self.provider_refunded_minor = refunded_total_minor

    def note_dispute_lost(self, amount_minor: int) -> None:
        self._dispute_lost(amount_minor)

    @event("DisputeLost")
    def _dispute_lost(self, amount_minor: int) -> None:
        self.disputes_lost_minor += amount_minor

    def partly_refund(self, reversed_minor: int, tonnes_taken_back: int, note: str) -> None:
        """A fulfilled sale reversed in part: ``reversed_minor`` and ``tonnes_taken_back``
        are the new running totals."""
        self.check_can("refund")
        self._partly_refunded(reversed_minor, tonnes_taken_back, note)

    @event("PartlyRefunded")
    def _partly_refunded(self, reversed_minor: int, tonnes_taken_back: int, note: str) -> None:
        self.reversed_minor, self.tonnes_taken_back, self.note = (
            reversed_minor, tonnes_taken_back, note)

    def flag(self, note: str) -> None:
        """Draws operators' attention (shown on the console's order page)."""
        self._flagged(note)

    @event("Flagged")
    def _flagged(self, note: str) -> None:
        self.flags = [*self.flags, note]


class PaymentIndex(Aggregate):
    """Which order a provider's payment belongs to: refunds and disputes name only the
    payment. Saved with the order when the payment is attached."""

    @staticmethod
    def create_id(payment_id: str, order_id: str) -> UUID:
        return payment_index_id(payment_id)

    @event("Indexed")
    def __init__(self, payment_id: str, order_id: str):
        self.payment_id, self.order_id = payment_id, order_id


class ProcessedPaymentEvent(Aggregate):
    """A provider event already acted on (Stripe delivers at least once, in any order)."""

    @staticmethod
    def create_id(event_id: str, **_: object) -> UUID:
        return named_id("payment-event", event_id)

    @event("Processed")
    def __init__(self, event_id: str, kind: str, order_id: str | None, outcome: str):
        self.event_id, self.kind, self.order_id, self.outcome = event_id, kind, order_id, outcome
