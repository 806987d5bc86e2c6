"""Reserving an order's tonnes in escrow, the caps on what an organisation may hold reserved,
and releasing reservations: when they expire, or when an operator ends them."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import ESCROW, Account, account_id
from ledger.domain.errors import InsufficientCreditsError
from market.domain.listings import Listing, NotEnoughAvailableError
from market.domain.orders import RESERVED, Order
from market.domain.reservations import (ReservationCaps, ReservationHolds, ReservationPolicy,
                                        holds_id)
from ledger.usecases.movements import move


class Reservations:
    """Use cases of reservations (needs ``self.store``, ``self.view``, ``self.now``,
    ``self.reservation``, ``self.ledger``, ``get_listing``, ``get_order`` and
    ``_cancel_order``)."""

    def reservation_policy(self) -> ReservationPolicy:
        """The operators' caps on reserved tonnes (the defaults until they set any)."""
        return self._policy()

    def reservation_caps(self, listing_id: str | None = None) -> ReservationCaps:
        """The caps on what one organisation may hold reserved on the listing (without
        one: on a listing without a cap of its own) and in all."""
        policy = self._policy()
        return policy.defaults if listing_id is None else policy.caps_for(listing_id)

    def set_reservation_caps(self, per_listing: int, per_organisation: int) -> dict:
        """Sets the marketplace's caps, for orders placed from now on (reservations held
        already stand). Raises InvalidReservationCapError."""

        def command():
            policy = self._policy()
            policy.set_caps(per_listing, per_organisation)
            return [policy], {"per_listing": per_listing, "per_organisation": per_organisation}

        fields = {"per_listing": per_listing, "per_organisation": per_organisation}
        return self.store.run("set_reservation_caps", fields, None, command)

    def set_listing_reservation_cap(self, listing_id: str, cap: int | None) -> dict:
        """Sets a listing's own cap per organisation (None: the marketplace's). Raises
        UnknownListingError, InvalidReservationCapError."""

        def command():
            listing = self.get_listing(listing_id)
            policy = self._policy()
            policy.set_listing_cap(str(listing.id), cap)
            return [policy], {"listing_id": str(listing.id),
                              "per_listing": policy.caps_for(str(listing.id)).per_listing}

        fields = {"listing_id": listing_id, "cap": cap}
        return self.store.run("set_listing_reservation_cap", fields, None, command)

    def reserved_by(self, organisation: str) -> ReservationHolds:
        """What the organisation holds reserved, by order, for reading."""
        return self._holds(organisation)

    def expire_order(self, order_id: str) -> bool:
        """Releases an order's reservation once its time is up; True if it expired now."""

        def command():
            order = self.get_order(order_id)
            if order.state != RESERVED or order.reserved_until > self.now():
                return [], {"expired": False}
            released = self._release(order)
            order.expire()
            return [order, *released], {"expired": True}

        return self.store.run("expire", {"order_id": order_id}, None, command)["expired"]

    def expire_due_orders(self) -> list[str]:
        """Expires every reservation past its time (the worker runs this, beside the
        projection that keeps the view up to date)."""
        return [order_id for order_id in self.view.due_reservations(self.now())
                if self.expire_order(order_id)]

    def release_reservation(self, order_id: str, reason: str) -> dict:
        """An operator ends a reservation before its time: the order is cancelled and its
        tonnes go back to the listing. Raises IllegalTransitionError unless the order is
        reserved."""
        return self._cancel_order(order_id, reason, only_reserved=True)

    def _reserve(self, order: Order, listing: Listing, caps: ReservationCaps | None = None
                 ) -> list:
        """The order's tonnes from the inventory into its escrow, counted in its listing and
        its organisation's holds; within ``caps``, if given (a late payment's tonnes are
        reserved again whatever the caps: the buyer has paid)."""
        inventory = self.ledger.get_account(listing.inventory_account)
        try:
            blocks = inventory.pick_of(listing.project_registry_id, listing.vintage_year,
                                       order.tonnes)
        except InsufficientCreditsError:
            raise NotEnoughAvailableError(
                f"listing {listing.id}: the inventory no longer holds {order.tonnes} t") from None
        listing.reserve(order.tonnes, reference=order.order_id)
        holds = self._holds(order.buyer_org)
        if caps is not None:
            # Checked on the holds this save changes: of two orders placed at once, the
            # second finds them changed at the save, runs again and sees the first's tonnes.
            holds.check_room(order.listing_id,
                             f"{listing.project_registry_id} {listing.vintage_year}",
                             order.tonnes, caps)
        holds.hold(order.order_id, order.listing_id, order.tonnes)
        escrow = self._escrow(order)
        move(blocks, inventory, escrow)
        order.reserve([block.serial for block in blocks], self.now() + self.reservation)
        return [listing, inventory, escrow, holds]

    def _release(self, order: Order) -> list:
        """The reserved serials back to the inventory, and the listing's counter with them."""
        escrow = self.ledger.get_account(order.escrow_name)
        listing = self.get_listing(order.listing_id)
        inventory = self.ledger.get_account(listing.inventory_account)
        move(list(escrow.blocks), escrow, inventory)
        listing.release(order.tonnes, reference=order.order_id)
        return [escrow, inventory, listing, *self._let_go(order)]

    def _let_go(self, order: Order) -> list:
        """The organisation's holds without the order's tonnes, if they counted them."""
        holds = self._holds(order.buyer_org)
        return [holds] if holds.let_go(order.order_id) else []

    def _escrow(self, order: Order) -> Account:
        try:
            return self.store.load(account_id(order.escrow_name))
        except AggregateNotFoundError:
            return self.store.remember(Account(order.escrow_name, ESCROW, order.buyer_org))

    def _policy(self) -> ReservationPolicy:
        return self.store.singleton(ReservationPolicy.create_id(), ReservationPolicy)

    def _holds(self, organisation: str) -> ReservationHolds:
        return self.store.singleton(holds_id(organisation),
                                    lambda: ReservationHolds(organisation))
