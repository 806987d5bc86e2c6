"""Placing orders, cancelling them, and reading them."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import HOLDING, Account, account_id, check_account_name
from ledger.domain.errors import UnknownAccountError
from ledger.domain.ids import public_id
from ledger.domain.retirements import RetirementClaim
from ledger.domain.text import check_printable, check_text
from market.domain.errors import MarketError
from market.domain.listings import Listing
from market.domain.orders import (RESERVED, IllegalTransitionError, Order, UnknownOrderError,
                                  order_aggregate_id)
from market.domain.quotes import quote_tonnes
from market.domain.reservations import ReservationPolicy, holds_id
from market.usecases.listings import listing_ids


def check_reason(reason: object, what: str) -> None:
    """A refund's or cancellation's reason: 1-500 printable characters, lines allowed."""
    check_text(f"the {what}'s reason", reason, most=500, multiline=True, error=MarketError)


class Orders:
    """Use cases of orders (needs ``self.store``, ``self.ledger``, ``self.now``,
    ``get_listing`` and the reservations' ``_policy``, ``_reserve`` and ``_release``)."""

    def place_order(self, listing_id: str, tonnes: int, buyer_org: str, buyer_account: str,
                    retirement: RetirementClaim | None = None,
                    idempotency_key: str | None = None) -> dict:
        """Reserves ``tonnes`` for a buyer: they move from the inventory into the order's
        escrow account, in one save with the listing's counter. Raises
        NotEnoughAvailableError, BelowMinimumQuantityError, ListingNotActiveError, ..."""
        check_printable("buyer organisation", buyer_org)
        if retirement is not None:
            retirement.check()

        # And the organisation's holds: its other orders and its payments change them too.
        changes = [*self._reservation_changes(listing_id), holds_id(buyer_org)]

        def command():
            order_id = public_id("KAP-ORD")
            # What placing reads, in one round trip: the aggregates it changes, the buyer's
            # account, the caps and the order's escrow (new, so only probed).
            self.store.prefetch(*changes, account_id(buyer_account),
                                ReservationPolicy.create_id(),
                                account_id(Order.escrow_name_of(order_id)))
            listing = self.get_listing(listing_id)
            quote = quote_tonnes(listing, tonnes, self.now())
            buyer = self._holding(buyer_account, buyer_org)
            order = Order(order_id, buyer_org, buyer_account, str(listing.id),
                          listing.project_registry_id, listing.vintage_year, tonnes,
                          quote.unit_price, quote.total_minor, quote.currency, retirement)
            changed = self._reserve(order, listing, self._policy().caps_for(str(listing.id)))
            return [order, buyer, *changed], self.order_summary(order)

        fields = {"listing_id": listing_id, "tonnes": tonnes, "buyer_org": buyer_org,
                  "buyer_account": buyer_account, "retirement": retirement}
        return self.store.run("place_order", fields, idempotency_key, command, hot=changes)

    def _reservation_changes(self, listing_id: str) -> list[UUID]:
        """Placing an order changes its listing and the listing's inventory account (other
        listings may sell from it too), as this process last saw the listing: the turns it
        takes, and the first of what it reads."""
        ids = listing_ids(listing_id)
        if not ids:
            return ids
        known = self.store.cached(ids[0])
        if known is None:
            try:
                known = self.store.load(ids[0])  # once per process: then it is cached
            except AggregateNotFoundError:
                return ids
        return [*ids, account_id(known.inventory_account)] if isinstance(known, Listing) else ids

    def _holding(self, name: str, owner: str) -> Account:
        """The buyer's account, opened in the same save if it is new."""
        check_account_name(name)
        try:
            return self.ledger.get_account(name)
        except UnknownAccountError:
            return self.store.remember(Account(name, HOLDING, owner))

    def cancel_order(self, order_id: str, reason: str) -> dict:
        """Cancels a draft or reserved order, its reserved tonnes back on offer. Raises
        IllegalTransitionError for an order in any other state."""
        return self._cancel_order(order_id, reason, only_reserved=False)

    def _cancel_order(self, order_id: str, reason: str, only_reserved: bool) -> dict:
        check_reason(reason, "cancellation")

        def command():
            order = self.get_order(order_id)
            if only_reserved and order.state != RESERVED:
                raise IllegalTransitionError(
                    f"order {order.order_id} is {order.state}: it holds no reservation to "
                    "release")
            released = self._release(order) if order.state == RESERVED else []
            order.cancel(reason)  # refuses every state but draft and reserved
            return [order, *released], self.order_summary(order)

        fields = {"order_id": order_id, "reason": reason, "only_reserved": only_reserved}
        return self.store.run("cancel", fields, None, command)

    def get_order(self, order_id: str) -> Order:
        try:
            return self.store.load(order_aggregate_id(order_id))
        except AggregateNotFoundError:
            raise UnknownOrderError(f"unknown order {order_id}") from None

    def peek_order(self, order_id: str) -> Order:
        """The order as this process last saw or wrote it, else read: for the facts of an
        order that never change (its buyer, listing, amount). Do not mutate it."""
        seen = self.store.cached(order_aggregate_id(order_id))
        return seen if isinstance(seen, Order) else self.get_order(order_id)

    @staticmethod
    def order_summary(order: Order) -> dict:
        return {
            "order_id": order.order_id, "state": order.state, "tonnes": order.tonnes,
            "project": order.project, "vintage": order.vintage,
            "unit_price": str(order.unit_price), "total_minor": order.total_minor,
            "currency": order.currency, "buyer_org": order.buyer_org,
            "buyer_account": order.buyer_account, "serials": list(order.serials),
            "reserved_until": order.reserved_until.isoformat() if order.reserved_until else None,
            "payment_id": order.payment_id, "delivery_reference": order.delivery_reference,
            "retire": order.retirement is not None,
        }

    def _summary_of(self, order: Order | None) -> dict | None:
        return self.order_summary(order) if order is not None else None
