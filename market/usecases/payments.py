"""Paying for orders: starting and confirming a provider's payment, the demo's offline
payment, acting once on each provider event, and settling a paid order: delivery of its
serials and allocation of its proceeds, in the same save."""

from __future__ import annotations

import logging
from typing import Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import account_id
from ledger.domain.errors import LedgerError
from ledger.domain.ids import public_id
from ledger.domain.retirements import Retirement
from market.domain.errors import MarketError
from market.domain.orders import (CANCELLED, EXPIRED, FULFILLED, PAID, REFUNDED, RESERVED,
                                  IllegalTransitionError, Order, PaymentIndex,
                                  ProcessedPaymentEvent, UnknownOrderError,
                                  order_aggregate_id, payment_index_id)
from market.domain.payments import REFUNDED as PAYMENT_REFUNDED
from market.domain.payments import (DISPUTE_LOST, DISPUTE_OPENED, DISPUTE_WON, SUCCEEDED,
                                    OfflinePaymentProvider, Payment, PaymentError,
                                    PaymentEvent)
from market.domain.proceeds import (SaleProceeds, benefit_rule_id, farm_id, proceeds_ledger_id,
                                    sale_proceeds_id, split_proceeds)
from market.domain.reservations import holds_id
from market.domain.roster import FarmRoster
from market.usecases.listings import listing_ids
from ledger.usecases.movements import move

REFUND_DUE = "late payment: refund due"
MISMATCH = "mismatch"

log = logging.getLogger(__name__)


def mismatch(order: Order, event: PaymentEvent) -> str | None:
    """Why a signed event cannot be this order's, or None: another payment, another
    currency, another amount than the order's total (a success), or more (a reversal)."""
    if event.payment_id != order.payment_id:
        return (f"payment {event.payment_id} is not the order's "
                f"({order.payment_id or 'none attached'})")
    if event.currency != order.currency:
        return f"currency {event.currency}, the order's is {order.currency}"
    if event.kind == SUCCEEDED and event.amount_minor != order.total_minor:
        return f"{event.amount_minor} paid, the order's total is {order.total_minor}"
    if event.amount_minor > order.total_minor:
        return f"{event.amount_minor} is more than the order's total {order.total_minor}"
    return None


class Payments:
    """Use cases of payments (needs ``self.store``, ``self.now``, ``self.payments`` (the
    provider), ``self.ledger``, ``get_listing``, ``get_order``, the reservations'
    ``_reserve``, ``_release`` and ``_let_go``, the refunds' ``_reverse`` and
    ``_reverse_due``, and the proceeds' ``_benefit_rule``, ``_roster`` and ``_proceeds``)."""

    def start_payment(self, order_id: str) -> dict:
        """Creates the provider's payment for a reserved order; for an order that has one
        already (a second click, a page opened again), that payment as it is now. Raises
        IllegalTransitionError, before asking the provider, for any other state."""
        order, payment = self._payment_of(order_id)
        return self._payment_summary(order, payment)

    def start_card_payment(self, order_id: str) -> dict:
        """As ``start_payment``, with a client secret for the buyer's browser to give the
        card to the provider (``setup_client_secret``); then ``confirm_card_payment``."""
        self._check_takes_cards()
        order, payment = self._payment_of(order_id)
        return {**self._payment_summary(order, payment),
                "setup_client_secret": self.payments.start_card_setup(order.order_id, payment)}

    def confirm_card_payment(self, order_id: str, payment_method: str) -> dict:
        """Pays a reserved order's payment with the card its buyer gave the provider. The
        order is settled when the provider's webhook says the payment succeeded; "status"
        ``requires_action`` asks the browser to authenticate the card (3-D Secure) with the
        provider first. Raises IllegalTransitionError for an order not awaiting this payment,
        PaymentError for a card the provider declines."""
        self._check_takes_cards()
        order = self.get_order(order_id)
        order.check_can("pay")
        if order.payment_id is None or order.provider != self.payments.name:
            raise IllegalTransitionError(
                f"order {order.order_id} has no {self.payments.name} payment to confirm")
        payment = self.payments.confirm_payment(order.payment_id, payment_method)
        return {"order_id": order.order_id, "payment_id": payment.payment_id,
                "status": payment.status, "client_secret": payment.client_secret}

    def _check_takes_cards(self) -> None:
        if not self.payments.takes_card_details:
            raise PaymentError(f"the {self.payments.name} provider takes no card details")

    def _payment_of(self, order_id: str) -> tuple[Order, Payment]:
        """The order with its payment at the provider: the one it has, else a new one,
        attached to the order and indexed by its id."""
        order = self.get_order(order_id)
        order.check_can("attach_payment")
        if order.payment_id is not None and order.provider == self.payments.name:
            return order, self.payments.retrieve_payment(order.payment_id)
        payment = self.payments.create_payment(
            order.order_id, order.total_minor, order.currency,
            f"{order.tonnes} t {order.project} {order.vintage} (Kapok order {order.order_id})",
        )

        def command():
            fresh = self.get_order(order_id)
            fresh.attach_payment(self.payments.name, payment.payment_id)
            changed = [fresh]
            if not self.store.exists(payment_index_id(payment.payment_id)):
                changed.append(PaymentIndex(payment.payment_id, fresh.order_id))
            return changed, {"payment_id": payment.payment_id}

        fields = {"order_id": order_id, "payment_id": payment.payment_id}
        self.store.run("attach_payment", fields, None, command)
        return order, payment

    def _payment_summary(self, order: Order, payment: Payment) -> dict:
        return {"order_id": order.order_id, "payment_id": payment.payment_id,
                "client_secret": payment.client_secret, "provider": self.payments.name,
                "test_mode": payment.test_mode, "amount_minor": order.total_minor,
                "currency": order.currency}

    def _attach(self, order: Order, payment_id: str) -> list:
        """The payment on the order and in the index, if the order can still take it."""
        if order.state != RESERVED or order.payment_id is not None:
            return []
        order.attach_payment(self.payments.name, payment_id)
        index = [] if self.store.exists(payment_index_id(payment_id)) else [
            PaymentIndex(payment_id, order.order_id)]
        return [order, *index]

    def pay_offline(self, order_id: str, order: Order | None = None) -> str:
        """The demo's test payment: confirms with the offline provider and settles at once.
        ``order``, if the caller has it (even as last seen: see ``peek_order``), saves
        reading it again; the settling itself reads it afresh. Returns the outcome."""
        return self._pay_offline(order_id, order)["outcome"]

    def pay_offline_summary(self, order_id: str, order: Order | None = None) -> dict:
        """As ``pay_offline``, returning the order as the payment left it (``order_summary``),
        without reading it once more (but after a late payment's refund, which is rare)."""
        return (self._pay_offline(order_id, order)["order"]
                or self.order_summary(self.get_order(order_id)))

    def _pay_offline(self, order_id: str, order: Order | None) -> dict:
        if not isinstance(self.payments, OfflinePaymentProvider):
            raise MarketError("offline test payments are only for the demo's offline provider")
        if order is None or order.order_id != order_id:
            order = self.get_order(order_id)
        order.check_can("attach_payment")
        payment = self.payments.create_payment(order.order_id, order.total_minor,
                                               order.currency, "Kapok demo test payment")
        self.payments.confirm_payment(payment.payment_id, OfflinePaymentProvider.TEST_METHOD)
        # The payment is attached in the same save that settles the order: one save, not two.
        return self._payment_event(PaymentEvent(
            f"offline_evt_{payment.payment_id}", SUCCEEDED, payment.payment_id,
            order.order_id, order.total_minor, order.currency, fee_minor=0), attach=True,
            hot=self._sale_turns(order))

    def handle_payment_event(self, event: PaymentEvent) -> str:
        """Acts once on a verified provider event; a repeat returns 'duplicate'.

        Succeeded: the order is paid and fulfilled (serials to the buyer, or retired on its
        behalf) with its proceeds allocated, in one save; a late payment after expiry is
        fulfilled if the tonnes can still be reserved, else refunded. Returns the outcome."""
        return self._payment_event(event)["outcome"]

    def _payment_event(self, event: PaymentEvent, attach: bool = False,
                       hot: Sequence[UUID] = ()) -> dict:
        """``handle_payment_event``'s work; ``attach``: the offline payment, attached in the
        settling save. The result's "order" is the order as the event left it (a summary),
        or None if there is none or a refund changed it since."""
        # The order as this process last saw it says what the settling will read.
        seen = self.store.cached(order_aggregate_id(event.order_id)) if event.order_id else None
        if not hot and isinstance(seen, Order):
            hot = self._sale_turns(seen)

        def command():
            processed = ProcessedPaymentEvent.create_id(event.event_id)
            self.store.prefetch(processed, payment_index_id(event.payment_id), *(
                [order_aggregate_id(event.order_id)] if event.order_id else []),
                *self._sale_ids(seen))
            order = self._order_for(event)
            if attach and order is not None:
                # Checked again on the order as it is now (the caller's may be as last seen):
                # an offline payment of a paid order is refused, not reported a duplicate.
                order.check_can("attach_payment")
            if self.store.exists(processed):
                return [], {"outcome": "duplicate", "order": self._summary_of(order)}
            if not isinstance(seen, Order):  # else read above: its facts are the same
                self.store.prefetch(*self._sale_ids(order))
            outcome, changed = self._act_on(order, event, attach)
            if outcome == REFUND_DUE:
                # Not marked processed yet: only once the refund is made (below), so a
                # failed refund call is tried again when the event is delivered again.
                return [], {"outcome": outcome, "order": order}
            record = ProcessedPaymentEvent(event.event_id, event.kind,
                                           order.order_id if order else event.order_id, outcome)
            return [*changed, record], {"outcome": outcome, "order": self._summary_of(order)}

        fields = {"event": event, "attach": attach}
        result = self.store.run("payment_event", fields, None, command, hot=hot)
        if result["outcome"] == REFUND_DUE:  # the order changed again: no summary of it here
            return {"outcome": self._refund_late_payment(result["order"], event), "order": None}
        return result

    def _act_on(self, order: Order | None, event: PaymentEvent, attach: bool
                ) -> tuple[str, list]:
        """What a new event does to its order: the outcome, and the aggregates changed."""
        if order is None:
            return "unknown order", []
        if not attach and (problem := mismatch(order, event)):
            # Signed, yet not this order's: acted on by nobody, shown to operators.
            log.warning("payment event %s (%s) does not match order %s: %s",
                        event.event_id, event.kind, order.order_id, problem)
            order.flag(f"{event.kind} event {event.event_id} ignored: {problem}")
            return MISMATCH, [order]
        if event.kind == SUCCEEDED:
            attached = self._attach(order, event.payment_id) if attach else []
            outcome, changed = self._settle(order, event)
            return outcome, [*attached, *changed]
        if event.kind in (PAYMENT_REFUNDED, DISPUTE_LOST):
            return self._reverse(order, event)
        if event.kind in (DISPUTE_OPENED, DISPUTE_WON):
            # An open dispute may still be won: nothing irreversible until it is lost.
            order.flag(f"{event.kind} ({event.event_id})")
            return ("dispute opened: flagged for operators" if event.kind == DISPUTE_OPENED
                    else "dispute won: nothing changes"), [order]
        # FAILED: the reservation stands until it expires; the buyer may retry
        return f"payment failed for {order.state} order", []

    def _refund_late_payment(self, order: Order, event: PaymentEvent) -> str:
        """Refunds a payment whose tonnes are gone (idempotent at the provider by order id),
        then records the refund and the event together."""
        refund_id = self.payments.refund(event.payment_id, order.order_id)

        def command():
            if self.store.exists(ProcessedPaymentEvent.create_id(event.event_id)):
                return [], {"outcome": "duplicate"}
            fresh = self.get_order(order.order_id)
            changed = []
            if fresh.state in (EXPIRED, CANCELLED):
                fresh.refund(refund_id, "paid after the reservation ended; the tonnes are gone")
                changed.append(fresh)
            outcome = f"refunded ({refund_id})"
            record = ProcessedPaymentEvent(event.event_id, event.kind, fresh.order_id, outcome)
            return [*changed, record], {"outcome": outcome}

        fields = {"order_id": order.order_id, "event": event}
        return self.store.run("payment_refund", fields, None, command)["outcome"]

    def _order_for(self, event: PaymentEvent) -> Order | None:
        order_id = event.order_id
        if order_id is None:
            try:
                order_id = self.store.load(payment_index_id(event.payment_id)).order_id
            except AggregateNotFoundError:
                return None
        try:
            return self.get_order(order_id)
        except UnknownOrderError:
            return None

    @staticmethod
    def _sale_turns(order: Order) -> list[UUID]:
        """Settling a sale changes its listing (placing orders from it does too), its
        currency's proceeds journal (settling any listing's sales does too) and its
        organisation's holds (placing the organisation's orders does too)."""
        return [*listing_ids(order.listing_id), proceeds_ledger_id(order.currency),
                holds_id(order.buyer_org)]

    def _sale_ids(self, order: Order | None) -> list[UUID]:
        """What settling a paid order reads: escrow, listing, buyer's account, the project's
        benefit-sharing rule, the farm roster and its farms (as last seen: a farm added since
        is loaded on its own), the proceeds journal and the sale's proceeds record (absent
        until booked). Any version of the order will do: these facts of an order never
        change."""
        if not isinstance(order, Order):
            return []
        roster = self.store.cached(FarmRoster.create_id())
        try:
            farms = roster.codes_of(order.project) if isinstance(roster, FarmRoster) else []
        except RuntimeError:  # being fast-forwarded by another thread: load farms one by one
            farms = []
        return [account_id(order.escrow_name), UUID(order.listing_id),
                account_id(order.buyer_account), benefit_rule_id(order.project),
                FarmRoster.create_id(), *(farm_id(order.project, code) for code in farms),
                proceeds_ledger_id(order.currency), holds_id(order.buyer_org),
                sale_proceeds_id(order.currency, order.order_id)]  # new: only probed

    def _settle(self, order: Order, event: PaymentEvent) -> tuple[str, list]:
        """A payment succeeded: the order paid and delivered (reserved again first, if it
        expired meanwhile), or REFUND_DUE if its tonnes are gone."""
        if order.state in (PAID, FULFILLED, REFUNDED):
            return f"already {order.state}", []
        changed = [order]
        if order.reversal_due == order.total_minor:
            # The provider gave all the money back before telling us it was paid.
            if order.state == RESERVED:
                order.pay(event.event_id, event.amount_minor)
                changed += self._release(order)
            order.refund(event.event_id, "refunded by the provider before its payment "
                                         "settled: nothing delivered")
            return "refunded before delivery", changed
        if order.state == CANCELLED:
            return REFUND_DUE, []
        if order.state == EXPIRED:
            try:
                changed += self._reserve(order, self.get_listing(order.listing_id))
            except (MarketError, LedgerError):
                return REFUND_DUE, []
        order.pay(event.event_id, event.amount_minor)
        changed += self._deliver(order, event)
        if order.reversal_due > order.reversed_minor:  # a part given back early
            booked = next(sale for sale in changed if isinstance(sale, SaleProceeds))
            reversed_now, note = self._reverse_due(order, event.event_id,
                                                   "refunded before its payment settled", booked)
            saved = {id(aggregate) for aggregate in changed}
            return f"fulfilled; {note}", [*changed, *(aggregate for aggregate in reversed_now
                                                      if id(aggregate) not in saved)]
        return "fulfilled", changed

    def _deliver(self, order: Order, event: PaymentEvent) -> list:
        """Serials from escrow to the buyer (or retired for it), listing sold, money split."""
        escrow = self.ledger.get_account(order.escrow_name)
        blocks = list(escrow.blocks)
        listing = self.get_listing(order.listing_id)
        listing.sell(order.tonnes, reference=order.order_id)
        changed: list = [escrow, listing, *self._let_go(order)]
        if order.retirement is not None:
            reference = public_id("KAP-RET")
            escrow.retire(blocks, reference)
            changed.append(Retirement(reference, escrow.name, tuple(blocks), order.retirement))
        else:
            buyer = self.ledger.get_account(order.buyer_account)
            reference = move(blocks, escrow, buyer)
            changed.append(buyer)
        order.fulfil(reference)
        changed += self._allocate_proceeds(order, event)
        return changed

    def _allocate_proceeds(self, order: Order, event: PaymentEvent) -> list:
        """The sale booked in its currency's journal, its money split between the project's
        payees by the benefit-sharing rule in force."""
        rule = self._benefit_rule(order.project).rule_at(self.now())
        farms = [self.store.load(farm_id(order.project, code))
                 for code in self._roster().codes_of(order.project)]
        allocations = split_proceeds(order.total_minor, order.currency, rule, farms)
        journal = self._proceeds(order.currency)
        sale = journal.record_sale(order.order_id, order.total_minor, allocations,
                                   stripe_fee_minor=event.fee_minor or None,
                                   received_on=self.now().date(), project=order.project,
                                   exists=self.store.exists)
        return [journal, sale]
