"""Refunds: an operator's refund of an order, and reversing what a payment provider gave back
(a refund or a lost dispute): the sale's money withdrawn, its credits taken back if they can be.
"""

from __future__ import annotations

from typing import Sequence

from ledger.domain.serials import SERIAL_PREFIX, SerialBlock
from market.domain.orders import FULFILLED, PAID, REFUNDED, IllegalTransitionError, Order
from market.domain.payments import DISPUTE_LOST, PaymentEvent
from market.domain.proceeds import SaleProceeds
from ledger.usecases.movements import move
from market.usecases.orders import check_reason

# What a refund does with delivered credits (see Refunds._undo_sale).
RECOVER_ALL, RECOVER_HELD, RECOVER_NONE = "all", "held", "none"


class Refunds:
    """Use cases of refunds (needs ``self.store``, ``self.now``, ``self.payments``,
    ``self.ledger``, ``get_listing``, ``get_order``, the reservations' ``_release`` and the
    proceeds' ``_proceeds`` and ``sale_proceeds``)."""

    def refund_order(self, order_id: str, reason: str, recover_credits: bool = True) -> dict:
        """An operator refunds a paid or fulfilled order through the payment provider.

        The provider's refund is requested first (idempotent per order), then the order,
        the proceeds and (with ``recover_credits``) the credits are reversed in one save.
        Raises IllegalTransitionError when the order cannot be refunded, or when credits
        must be recovered and the buyer no longer holds them all (nothing is refunded)."""
        check_reason(reason, "refund")
        credits = RECOVER_ALL if recover_credits else RECOVER_NONE
        order = self._refundable(order_id, credits)
        refund_id = self.payments.refund(order.payment_id, order.order_id)

        def command():
            fresh = self.get_order(order_id)
            if fresh.state == REFUNDED:
                return [], self.order_summary(fresh)
            changed, note = self._unwind(fresh, credits)
            fresh.refund(refund_id, f"{reason.strip()} ({note})")
            return [fresh, *changed], self.order_summary(fresh)

        fields = {"order_id": order_id, "reason": reason, "recover_credits": recover_credits}
        return self.store.run("refund_order", fields, None, command)

    def _refundable(self, order_id: str, credits: str) -> Order:
        """The order, if it can be refunded as ``credits`` says: checked before the provider
        is asked for the money back. Raises IllegalTransitionError."""
        order = self.get_order(order_id)
        if order.state not in (PAID, FULFILLED):
            raise IllegalTransitionError(
                f"order {order.order_id} is {order.state}: only paid or fulfilled orders "
                "can be refunded")
        if order.state == FULFILLED:
            self._undo_sale(order, credits)  # a dry run on a copy: refuse before the provider
        if order.payment_id is None:
            raise IllegalTransitionError(f"order {order.order_id} has no payment to refund")
        return order

    def _unwind(self, order: Order, credits: str) -> tuple[list, str]:
        """What refunding the order undoes, and a note: a fulfilled order's sale, a paid
        order's reservation (its tonnes are still in escrow: back to the inventory)."""
        if order.state == FULFILLED:
            return self._undo_sale(order, credits)
        changed = self._release(order) if order.state == PAID else []
        return changed, "refunded before delivery"

    def _reverse(self, order: Order, event: PaymentEvent) -> tuple[str, list]:
        """The provider gave money back (a refund, or a lost dispute): remembered on the
        order whatever its state, and reversed at once if it is fulfilled (else when its
        payment settles); what can be undone is undone (see ``_undo_sale``)."""
        if event.kind == DISPUTE_LOST:
            order.note_dispute_lost(event.amount_minor)
        else:
            order.note_refunds(event.amount_minor)
        if order.state != FULFILLED:
            return f"{event.kind} noted on {order.state} order", [order]
        if order.reversal_due <= order.reversed_minor:
            return f"{event.kind}: nothing more to reverse", [order]
        changed, note = self._reverse_due(order, event.event_id,
                                          f"{event.kind} reported by {self.payments.name}")
        return f"{event.kind}: {note}", [order, *changed]

    def _reverse_due(self, order: Order, reference: str, reason: str,
                     sale: SaleProceeds | None = None) -> tuple[list, str]:
        """Reverses what the provider gave back of a fulfilled sale and the sale has not
        reversed yet: all of it refunds the order (``_undo_sale``); a part moves that money
        back out of the journal, split as the sale was, and takes back the tonnes it paid
        for (rounded down: the buyer keeps the tonne a part of whose price it still paid).
        ``sale``: the order's, when booked in this same command (not in the store yet).
        Returns what changed besides the order, and a note."""
        due = order.reversal_due
        if due == order.total_minor:
            changed, note = self._undo_sale(order, credits=RECOVER_HELD)
            order.refund(reference, f"{reason}; {note}")
            return changed, f"order refunded; {note}"
        journal = self._proceeds(order.currency)
        sale = sale or self.sale_proceeds(order.currency, order.order_id)
        journal.record_refund(sale, self.now().date(), due - order.reversed_minor)
        tonnes = due * order.tonnes // order.total_minor
        changed, taken = self._take_back(order, tonnes - order.tonnes_taken_back, RECOVER_HELD)
        note = f"{due} of {order.total_minor} minor units refunded in part; {taken}"
        order.partly_refund(due, tonnes, f"{reason}; {note}")
        return [journal, sale, *changed], note

    def _undo_sale(self, order: Order, credits: str) -> tuple[list, str]:
        """Reverses a fulfilled sale's effects, the refund policy in one place:

        - money: the sale's allocation to every payee is withdrawn in the proceeds journal
          (what was paid out already is owed back, netted against the payee's next sales);
        - credits: delivered serials the buyer still holds go back to the listing's
          inventory and are on offer again. Retired credits cannot come back (a retirement
          is final); nor can serials the buyer has passed on. ``credits`` says what to do:
          RECOVER_ALL (an operator's refund) refuses unless every tonne can come back;
          RECOVER_HELD (the provider refunded already) takes back what is left and the
          platform absorbs the rest; RECOVER_NONE (an operator's goodwill refund) leaves
          the credits with the buyer. The note says what happened.
        """
        changed: list = []
        journal = self._proceeds(order.currency)
        sale = self.sale_proceeds(order.currency, order.order_id)
        if not sale.refunded:
            journal.record_refund(sale, self.now().date())
            changed += [journal, sale]
        taken_back, note = self._take_back(order, order.tonnes - order.tonnes_taken_back,
                                           credits)
        return changed + taken_back, note

    def _take_back(self, order: Order, tonnes: int, credits: str) -> tuple[list, str]:
        """Up to ``tonnes`` of the order's delivered serials back from the buyer to the
        listing's inventory, as ``credits`` says (see ``_undo_sale``)."""
        if order.retirement is not None:
            if credits == RECOVER_ALL:
                raise IllegalTransitionError(
                    f"order {order.order_id}: its {order.tonnes} t were retired for the buyer "
                    "and cannot come back; refund it without recovering the credits")
            return [], f"{tonnes} t stay retired (not recoverable)"
        if credits == RECOVER_NONE:
            return [], "credits left with the buyer"
        buyer = self.ledger.get_account(order.buyer_account)
        held = first_tonnes(held_parts(
            buyer.blocks, [serial_numbers(serial) for serial in order.serials]), tonnes)
        recovered = sum(block.quantity for block in held)
        missing = tonnes - recovered
        if missing and credits == RECOVER_ALL:
            raise IllegalTransitionError(
                f"order {order.order_id}: the buyer no longer holds {missing} of its "
                f"{tonnes} t (retired or transferred); refund it without recovering "
                "the credits")
        changed: list = []
        if held:
            listing = self.get_listing(order.listing_id)
            inventory = self.ledger.get_account(listing.inventory_account)
            move(held, buyer, inventory)
            listing.take_back(recovered, reference=order.order_id)
            changed += [buyer, inventory, listing]
        note = f"{recovered} t recovered to the inventory"
        return changed, note + (f", {missing} t not recoverable" if missing else "")


def serial_numbers(serial: str) -> tuple[int, int, int]:
    """(batch, first, last) of a printed block serial: Kapok's ``KAP-{batch}-{first}-{last}-...``
    or a mirrored registry's ``{batch}-{first}-{last}-...`` (Verra's)."""
    parts = serial.split("-")
    if parts[0] == SERIAL_PREFIX:
        parts = parts[1:]
    batch, first, last = parts[:3]
    return int(batch), int(first), int(last)


def first_tonnes(blocks: Sequence[SerialBlock], tonnes: int) -> list[SerialBlock]:
    """The first ``tonnes`` of ``blocks`` (all of them if they hold fewer)."""
    taken = []
    for block in blocks:
        if tonnes <= 0:
            break
        part = block if block.quantity <= tonnes else block.sub(block.first,
                                                                 block.first + tonnes - 1)
        taken.append(part)
        tonnes -= part.quantity
    return taken


def held_parts(held: Sequence[SerialBlock], delivered: Sequence[tuple[int, int, int]]
               ) -> list[SerialBlock]:
    """The parts of the ``delivered`` (batch, first, last) ranges still in ``held`` blocks."""
    parts = []
    for batch, first, last in delivered:
        for holding in held:
            low, high = max(first, holding.first), min(last, holding.last)
            if holding.batch == batch and low <= high:
                parts.append(holding.sub(low, high))
    return parts
