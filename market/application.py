"""The market's service layer: listings, quotes, orders, payments and proceeds.

``Marketplace`` extends the ledger's application, so ledger and market aggregates live in one
event store and a sale's whole effect (order state, serials moving, listing counters, money
allocated to the farms, and the de-duplication record of the provider's event) is one
atomic save: exactly once, whatever the provider redelivers or however a process dies.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import ESCROW, HOLDING, Account, account_id, check_account_name
from ledger.application import Ledger
from ledger.domain.errors import (
    InsufficientCreditsError,
    LedgerError,
    NotFoundError,
    UnknownAccountError,
)
from ledger.domain.ids import public_id
from ledger.domain.projects import Project, project_id
from ledger.domain.retirements import Retirement, RetirementClaim
from ledger.domain.serials import SerialBlock
from ledger.domain.text import check_printable, check_text
from market.domain.errors import InvalidSaleError, MarketError, NoRuleInForceError
from market.domain.listings import (
    InvalidListingError,
    Listing,
    NotEnoughAvailableError,
)
from market.domain.orders import (
    CANCELLED,
    IllegalTransitionError,
    EXPIRED,
    FULFILLED,
    PAID,
    REFUNDED,
    RESERVED,
    Order,
    PaymentIndex,
    ProcessedPaymentEvent,
    UnknownOrderError,
    order_aggregate_id,
    payment_index_id,
)
from market.domain.payments import REFUNDED as PAYMENT_REFUNDED
from market.domain.payments import (
    DISPUTE_LOST,
    DISPUTE_OPENED,
    DISPUTE_WON,
    SUCCEEDED,
    OfflinePaymentProvider,
    Payment,
    PaymentError,
    PaymentEvent,
    PaymentProvider,
)
from market.domain.proceeds import (
    BenefitSharingRule,
    Farm,
    FarmDetails,
    ProceedsLedger,
    SaleProceeds,
    benefit_rule_id,
    farm_id,
    proceeds_ledger_id,
    sale_proceeds_id,
    split_proceeds,
)
from market.domain.quotes import Quote, quote_amount, quote_estimate, quote_tonnes
from market.domain.reservations import ReservationCaps, ReservationHolds, ReservationPolicy, holds_id
from market.domain.roster import Catalogue, FarmRoster
from ledger.settings import KAPOK_RESERVATION_MINUTES
from market.adapters.store import MarketStore

# What a refund does with delivered credits (see Marketplace._undo_sale).
RECOVER_ALL, RECOVER_HELD, RECOVER_NONE = "all", "held", "none"
REFUND_DUE = "late payment: refund due"
MISMATCH = "mismatch"

log = logging.getLogger(__name__)


class UnknownListingError(MarketError, NotFoundError):
    pass


class Marketplace(Ledger):
    """Kapok: the ledger plus the market, over one event store."""

    store_class = MarketStore

    def __init__(self, env: dict | None = None, database: str | None = None,
                 payments: PaymentProvider | None = None,
                 reservation_minutes: int = KAPOK_RESERVATION_MINUTES.default,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(env=env, database=database)
        self.payments = payments or OfflinePaymentProvider()
        self._listings_seen: tuple[int, list[Listing], dict[str, Project]] | None = None
        self.reservation = timedelta(minutes=reservation_minutes)
        self.now = clock or (lambda: datetime.now(timezone.utc))

    # --- listings ------------------------------------------------------------------------
    def create_listing(self, project: str, vintage: int, inventory_account: str,
                       price_per_tonne: Decimal, currency: str, on_offer: int,
                       minimum_quantity: int = 1, tiers: Sequence = (),
                       idempotency_key: str | None = None) -> dict:
        """Lists tonnes of a project vintage held in an inventory account. Raises
        InvalidListingError, UnknownProjectError, UnknownVintageError, UnknownAccountError,
        InsufficientCreditsError (more on offer than the account holds)."""

        def command():
            self.get_project(project).vintage(vintage)
            inventory = self.get_account(inventory_account)
            self._check_holds(inventory, project, vintage, on_offer)
            listing = Listing.create(
                project_registry_id=project, vintage_year=vintage,
                inventory_account=inventory.name, price_per_tonne=price_per_tonne,
                currency=currency, minimum_quantity=minimum_quantity, tiers=tiers,
                on_offer=on_offer, key=idempotency_key or "",
            )
            catalogue = self._catalogue()
            catalogue.add(str(listing.id))
            return [listing, catalogue], {"listing_id": str(listing.id)}

        payload = {"p": project, "v": vintage, "a": inventory_account, "price": str(price_per_tonne),
                   "c": currency, "o": on_offer, "m": minimum_quantity, "t": repr(tiers)}
        return self.store.run("create_listing", payload, idempotency_key, command)

    def change_listing(self, listing_id: str, *, on_offer: int | None = None,
                       status: str | None = None, price_per_tonne: Decimal | None = None,
                       tiers: Sequence | None = None, minimum_quantity: int | None = None
                       ) -> dict:
        """Changes the quantity on offer, the price (with its tiers and minimum), or pauses /
        resumes / closes a listing. Orders already placed keep the price they were quoted."""

        def command():
            listing = self.get_listing(listing_id)
            if price_per_tonne is not None:
                listing.reprice(price_per_tonne,
                                listing.tiers if tiers is None else tiers, minimum_quantity)
            if on_offer is not None:
                inventory = self.get_account(listing.inventory_account)
                self._check_holds(inventory, listing.project_registry_id, listing.vintage_year,
                                  on_offer - listing.reserved - listing.sold)
                listing.set_on_offer(on_offer)
            if status == "paused":
                listing.pause()
            elif status == "active":
                listing.resume()
            elif status == "closed":
                listing.close()
            return [listing], {"listing_id": listing_id, "status": listing.status,
                               "available": listing.available}

        return self.store.run("change_listing", {}, None, command)

    def get_listing(self, listing_id: str) -> Listing:
        try:
            return self.store.load(UUID(str(listing_id)))
        except (AggregateNotFoundError, ValueError):
            raise UnknownListingError(f"unknown listing {listing_id}") from None

    def listings(self) -> list[Listing]:
        """Every listing, for reading (the catalogue, the API). While the store has not moved
        on, the same copies are returned again: one query instead of one per listing."""
        return list(self._listed()[0])

    def listed_projects(self) -> dict[str, Project]:
        """The projects of every listing by registry id, for reading, kept as ``listings``."""
        return dict(self._listed()[1])

    def _listed(self) -> tuple[list[Listing], dict[str, Project]]:
        position = self.recorder.max_notification_id() or 0
        cached = self._listings_seen
        if cached is None or cached[0] != position:
            fresh = self.store.read_many([UUID(str(listing_id))
                                     for listing_id in self._catalogue().listing_ids])
            registry_ids = sorted({listing.project_registry_id for listing in fresh})
            projects = self.store.read_many([project_id(registry_id) for registry_id in registry_ids])
            cached = self._listings_seen = (position, fresh, dict(zip(registry_ids, projects)))
        return cached[1], cached[2]

    def quote(self, listing_id: str, *, tonnes: int | None = None, amount=None,
              estimate=None) -> Quote:
        """Prices a purchase by tonnes, by money (a ``Money``) or by an emissions estimate."""
        listing = self.get_listing(listing_id)
        now = self.now()
        if tonnes is not None:
            return quote_tonnes(listing, tonnes, now)
        if amount is not None:
            return quote_amount(listing, amount, now)
        return quote_estimate(listing, estimate, now)

    # --- reservation caps ----------------------------------------------------------------
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

        return self.store.run("set_reservation_caps", {}, None, command)

    def set_listing_reservation_cap(self, listing_id: str, cap: int | None) -> dict:
        """Sets a listing's own cap per organisation (None: the marketplace's). Raises
        UnknownListingError, InvalidReservationCapError."""

        def command():
            listing = self.get_listing(listing_id)
            policy = self._policy()
            policy.set_listing_cap(str(listing.id), cap)
            return [policy], {"listing_id": str(listing.id),
                              "per_listing": policy.caps_for(str(listing.id)).per_listing}

        return self.store.run("set_listing_reservation_cap", {}, None, command)

    def reserved_by(self, organisation: str) -> ReservationHolds:
        """What the organisation holds reserved, by order, for reading."""
        return self._holds(organisation)

    # --- orders --------------------------------------------------------------------------
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
            self.store.prefetch(*changes, account_id(buyer_account), ReservationPolicy.create_id(),
                           account_id(Order.escrow_name_of(order_id)))
            listing = self.get_listing(listing_id)
            quote = quote_tonnes(listing, tonnes, self.now())
            buyer = self._holding(buyer_account, buyer_org)
            order = Order(order_id, buyer_org, buyer_account, str(listing.id),
                          listing.project_registry_id, listing.vintage_year, tonnes,
                          quote.unit_price, quote.total_minor, quote.currency, retirement)
            changed = self._reserve(order, listing, self._policy().caps_for(str(listing.id)))
            return [order, buyer, *changed], self.order_summary(order)

        payload = {"l": listing_id, "t": tonnes, "b": buyer_org, "a": buyer_account,
                   "r": repr(retirement)}
        return self.store.run("place_order", payload, idempotency_key, command, hot=changes)

    def _reservation_changes(self, listing_id: str) -> list[UUID]:
        """Placing an order changes its listing and the listing's inventory account (other
        listings may sell from it too), as this process last saw the listing: the turns it
        takes, and the first of what it reads."""
        ids = _ids(listing_id)
        if not ids:
            return ids
        known = self.store.cached(ids[0])
        if known is None:
            try:
                known = self.store.load(ids[0])  # once per process: then it is cached
            except AggregateNotFoundError:
                return ids
        return [*ids, account_id(known.inventory_account)] if isinstance(known, Listing) else ids

    @staticmethod
    def _sale_turns(order: Order) -> list[UUID]:
        """Settling a sale changes its listing (placing orders from it does too), its
        currency's proceeds journal (settling any listing's sales does too) and its
        organisation's holds (placing the organisation's orders does too)."""
        return [*_ids(order.listing_id), proceeds_ledger_id(order.currency),
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

    def _reserve(self, order: Order, listing: Listing, caps: ReservationCaps | None = None
                 ) -> list:
        """The order's tonnes from the inventory into its escrow, counted in its listing and
        its organisation's holds; within ``caps``, if given (a late payment's tonnes are
        reserved again whatever the caps: the buyer has paid)."""
        inventory = self.get_account(listing.inventory_account)
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
        _move(blocks, inventory, escrow)
        order.reserve([block.serial for block in blocks], self.now() + self.reservation)
        return [listing, inventory, escrow, holds]

    def _let_go(self, order: Order) -> list:
        """The organisation's holds without the order's tonnes, if they counted them."""
        holds = self._holds(order.buyer_org)
        return [holds] if holds.let_go(order.order_id) else []

    def _escrow(self, order: Order) -> Account:
        try:
            return self.store.load(account_id(order.escrow_name))
        except AggregateNotFoundError:
            return self.store.remember(Account(order.escrow_name, ESCROW, order.buyer_org))

    def get_order(self, order_id: str) -> Order:
        try:
            return self.store.load(order_aggregate_id(order_id))
        except AggregateNotFoundError:
            raise UnknownOrderError(f"unknown order {order_id}") from None

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
        order._check("pay")
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
        order = self.get_order(order_id)
        order._check("attach_payment")
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

        self.store.run("attach_payment", {}, None, command)
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

    def peek_order(self, order_id: str) -> Order:
        """The order as this process last saw or wrote it, else read: for the facts of an
        order that never change (its buyer, listing, amount). Do not mutate it."""
        seen = self.store.cached(order_aggregate_id(order_id))
        return seen if isinstance(seen, Order) else self.get_order(order_id)

    def _pay_offline(self, order_id: str, order: Order | None) -> dict:
        if not isinstance(self.payments, OfflinePaymentProvider):
            raise MarketError("offline test payments are only for the demo's offline provider")
        if order is None or order.order_id != order_id:
            order = self.get_order(order_id)
        order._check("attach_payment")
        payment = self.payments.create_payment(order.order_id, order.total_minor,
                                               order.currency, "Kapok demo test payment")
        self.payments.confirm_payment(payment.payment_id, OfflinePaymentProvider.TEST_METHOD)
        # The payment is attached in the same save that settles the order: one save, not two.
        return self._payment_event(PaymentEvent(
            f"offline_evt_{payment.payment_id}", SUCCEEDED, payment.payment_id,
            order.order_id, order.total_minor, order.currency, fee_minor=0), attach=True,
            hot=self._sale_turns(order))

    def handle_payment_event(self, event: PaymentEvent, hot: Sequence[UUID] = ()) -> str:
        """Acts once on a verified provider event; a repeat returns 'duplicate'.

        Succeeded: the order is paid and fulfilled (serials to the buyer, or retired on its
        behalf) with its proceeds allocated, in one save; a late payment after expiry is
        fulfilled if the tonnes can still be reserved, else refunded. Returns the outcome.
        ``hot``: the order's listing and journal, when the caller knows them (see
        ``Store.run``)."""
        return self._payment_event(event, hot=hot)["outcome"]

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
                order._check("attach_payment")
            if self.store.exists(processed):
                return [], {"outcome": "duplicate", "order": self._summary_of(order)}
            if not isinstance(seen, Order):  # else read above: its facts are the same
                self.store.prefetch(*self._sale_ids(order))
            if order is None:
                outcome, changed = "unknown order", []
            elif not attach and (problem := _mismatch(order, event)):
                # Signed, yet not this order's: acted on by nobody, shown to operators.
                log.warning("payment event %s (%s) does not match order %s: %s",
                            event.event_id, event.kind, order.order_id, problem)
                order.flag(f"{event.kind} event {event.event_id} ignored: {problem}")
                outcome, changed = MISMATCH, [order]
            elif event.kind == SUCCEEDED:
                attached = self._attach(order, event.payment_id) if attach else []
                outcome, changed = self._settle(order, event)
                changed = [*attached, *changed]
                if outcome == REFUND_DUE:
                    # Not marked processed yet: only once the refund is made (below), so a
                    # failed refund call is tried again when the event is delivered again.
                    return [], {"outcome": outcome, "order": order}
            elif event.kind in (PAYMENT_REFUNDED, DISPUTE_LOST):
                outcome, changed = self._reverse(order, event)
            elif event.kind in (DISPUTE_OPENED, DISPUTE_WON):
                # An open dispute may still be won: nothing irreversible until it is lost.
                order.flag(f"{event.kind} ({event.event_id})")
                outcome = ("dispute opened: flagged for operators" if event.kind == DISPUTE_OPENED
                           else "dispute won: nothing changes")
                changed = [order]
            else:  # FAILED: the reservation stands until it expires; the buyer may retry
                outcome, changed = f"payment failed for {order.state} order", []
            record = ProcessedPaymentEvent(event.event_id, event.kind,
                                           order.order_id if order else event.order_id, outcome)
            return [*changed, record], {"outcome": outcome, "order": self._summary_of(order)}

        result = self.store.run("payment_event", {}, None, command, hot=hot)
        if result["outcome"] == REFUND_DUE:  # the order changed again: no summary of it here
            return {"outcome": self._refund_late_payment(result["order"], event), "order": None}
        return result

    def _summary_of(self, order: Order | None) -> dict | None:
        return self.order_summary(order) if order is not None else None

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

        return self.store.run("payment_refund", {}, None, command)["outcome"]

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

    def _settle(self, order: Order, event: PaymentEvent) -> tuple[str, list]:
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
        escrow = self.get_account(order.escrow_name)
        blocks = list(escrow.blocks)
        listing = self.get_listing(order.listing_id)
        listing.sell(order.tonnes, reference=order.order_id)
        changed: list = [escrow, listing, *self._let_go(order)]
        if order.retirement is not None:
            reference = public_id("KAP-RET")
            escrow.retire(blocks, reference)
            changed.append(Retirement(reference, escrow.name, tuple(blocks), order.retirement))
        else:
            buyer = self.get_account(order.buyer_account)
            reference = _move(blocks, escrow, buyer)
            changed.append(buyer)
        order.fulfil(reference)
        changed += self._allocate_proceeds(order, event)
        return changed

    def _allocate_proceeds(self, order: Order, event: PaymentEvent) -> list:
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
        buyer = self.get_account(order.buyer_account)
        held = _first_tonnes(_held_parts(
            buyer.blocks, [_serial_numbers(serial) for serial in order.serials]), tonnes)
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
            inventory = self.get_account(listing.inventory_account)
            _move(held, buyer, inventory)
            listing.take_back(recovered, reference=order.order_id)
            changed += [buyer, inventory, listing]
        note = f"{recovered} t recovered to the inventory"
        return changed, note + (f", {missing} t not recoverable" if missing else "")

    def refund_order(self, order_id: str, reason: str, recover_credits: bool = True) -> dict:
        """An operator refunds a paid or fulfilled order through the payment provider.

        The provider's refund is requested first (idempotent per order), then the order,
        the proceeds and (with ``recover_credits``) the credits are reversed in one save.
        Raises IllegalTransitionError when the order cannot be refunded, or when credits
        must be recovered and the buyer no longer holds them all (nothing is refunded)."""
        _check_reason(reason, "refund")
        order = self.get_order(order_id)
        if order.state not in (PAID, FULFILLED):
            raise IllegalTransitionError(
                f"order {order.order_id} is {order.state}: only paid or fulfilled orders "
                "can be refunded")
        credits = RECOVER_ALL if recover_credits else RECOVER_NONE
        if order.state == FULFILLED:
            self._undo_sale(order, credits)  # a dry run on a copy: refuse before the provider
        if order.payment_id is None:
            raise IllegalTransitionError(f"order {order.order_id} has no payment to refund")
        refund_id = self.payments.refund(order.payment_id, order.order_id)

        def command():
            fresh = self.get_order(order_id)
            if fresh.state == REFUNDED:
                return [], self.order_summary(fresh)
            changed = []
            note = "refunded before delivery"
            if fresh.state == FULFILLED:
                changed, note = self._undo_sale(fresh, credits)
            elif fresh.state == PAID:
                # Paid but not delivered: the tonnes are still in escrow; back to inventory.
                changed = self._release(fresh)
            fresh.refund(refund_id, f"{reason.strip()} ({note})")
            return [fresh, *changed], self.order_summary(fresh)

        return self.store.run("refund_order", {}, None, command)

    def expire_order(self, order_id: str) -> bool:
        """Releases an order's reservation once its time is up; True if it expired now."""

        def command():
            order = self.get_order(order_id)
            if order.state != RESERVED or order.reserved_until > self.now():
                return [], {"expired": False}
            released = self._release(order)
            order.expire()
            return [order, *released], {"expired": True}

        return self.store.run("expire", {}, None, command)["expired"]

    def cancel_order(self, order_id: str, reason: str) -> dict:
        """Cancels a draft or reserved order, its reserved tonnes back on offer. Raises
        IllegalTransitionError for an order in any other state."""
        return self._cancel(order_id, reason, only_reserved=False)

    def release_reservation(self, order_id: str, reason: str) -> dict:
        """An operator ends a reservation before its time: the order is cancelled and its
        tonnes go back to the listing. Raises IllegalTransitionError unless the order is
        reserved."""
        return self._cancel(order_id, reason, only_reserved=True)

    def _cancel(self, order_id: str, reason: str, only_reserved: bool) -> dict:
        _check_reason(reason, "cancellation")

        def command():
            order = self.get_order(order_id)
            if only_reserved and order.state != RESERVED:
                raise IllegalTransitionError(
                    f"order {order.order_id} is {order.state}: it holds no reservation to "
                    "release")
            released = self._release(order) if order.state == RESERVED else []
            order.cancel(reason)  # refuses every state but draft and reserved
            return [order, *released], self.order_summary(order)

        return self.store.run("cancel", {}, None, command)

    def _release(self, order: Order) -> list:
        """The reserved serials back to the inventory, and the listing's counter with them."""
        escrow = self.get_account(order.escrow_name)
        listing = self.get_listing(order.listing_id)
        inventory = self.get_account(listing.inventory_account)
        _move(list(escrow.blocks), escrow, inventory)
        listing.release(order.tonnes, reference=order.order_id)
        return [escrow, inventory, listing, *self._let_go(order)]

    def expire_due_orders(self) -> list[str]:
        """Expires every reservation past its time (the worker runs this, beside the
        projection that keeps the view up to date)."""
        return [order_id for order_id in self.view.due_reservations(self.now())
                if self.expire_order(order_id)]

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

    # --- proceeds ------------------------------------------------------------------------
    def set_benefit_rule(self, project: str, shares: dict, effective_from: datetime | None = None):
        def command():
            self.get_project(project)
            rule = self._benefit_rule(project, create=True)
            version = rule.set_shares(shares, effective_from or self.now())
            return [rule], {"project": project, "version": version.version}

        return self.store.run("set_benefit_rule", {}, None, command)

    def register_farm(self, project: str, farm_code: str, details: FarmDetails,
                      idempotency_key: str | None = None) -> dict:
        def command():
            self.get_project(project)
            roster = self._roster()
            roster.add(project, farm_code)
            farm = Farm.register(project, farm_code, details)
            return [roster, farm], {"project": project, "farm": farm_code}

        return self.store.run("register_farm", {"p": project, "f": farm_code, "d": repr(details)},
                         idempotency_key, command)

    def farms(self, project: str) -> list[Farm]:
        return [self.store.load(farm_id(project, code))
                for code in self._roster().codes_of(project)]

    def record_payout(self, currency: str, recipient: str, farm_code: str | None,
                      amount_minor: int, paid_on, reference: str) -> dict:
        def command():
            journal = self._proceeds(currency)
            payout = journal.record_payout(recipient, farm_code, amount_minor, paid_on,
                                           reference, exists=self.store.exists)
            return [journal, payout], {"reference": payout.entry.reference,
                                       "owed": journal.owed(recipient, farm_code)}

        return self.store.run("record_payout", {}, None, command)

    def benefit_rule(self, project: str) -> BenefitSharingRule:
        """Raises NoRuleInForceError if the project has none yet."""
        return self._benefit_rule(project)

    def proceeds(self, currency: str) -> ProceedsLedger:
        """The currency's journal: running totals (its entries are in the view)."""
        return self._proceeds(currency)

    def booked_sale(self, order: Order) -> SaleProceeds | None:
        """The order's sale as the proceeds journal booked it (who its money went to), or
        None for an order whose payment has not settled."""
        if order.state not in (FULFILLED, REFUNDED):
            return None  # a sale is booked in the save that fulfils its order: not read
        try:
            return self.sale_proceeds(order.currency, order.order_id)
        except InvalidSaleError:
            return None

    def sale_proceeds(self, currency: str, order_id: str) -> SaleProceeds:
        """An order's booked sale, with its entry. Raises InvalidSaleError if none."""
        try:
            return self.store.load(sale_proceeds_id(currency, order_id))
        except AggregateNotFoundError:
            raise InvalidSaleError(f"order {order_id} has no booked sale") from None

    # --- plumbing ------------------------------------------------------------------------
    def _check_holds(self, inventory: Account, project: str, vintage: int, quantity: int) -> None:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidListingError(f"the quantity on offer must be whole tonnes, not {quantity!r}")
        held = sum(b.quantity for b in inventory.blocks
                   if b.project == project and b.vintage == vintage)
        if quantity > held:
            raise InsufficientCreditsError(
                f"{inventory.name} holds {held} t of {project} {vintage}; cannot offer {quantity} t")

    def _holding(self, name: str, owner: str) -> Account:
        """The buyer's account, opened in the same save if it is new."""
        check_account_name(name)
        try:
            return self.get_account(name)
        except UnknownAccountError:
            return self.store.remember(Account(name, HOLDING, owner))


    def _catalogue(self) -> Catalogue:
        return self.store.singleton(Catalogue.create_id(), Catalogue)

    def _roster(self) -> FarmRoster:
        return self.store.singleton(FarmRoster.create_id(), FarmRoster)

    def _benefit_rule(self, project: str, create: bool = False) -> BenefitSharingRule:
        try:
            return self.store.load(benefit_rule_id(project))
        except AggregateNotFoundError:
            if create:
                return self.store.remember(BenefitSharingRule.create(project))
            raise NoRuleInForceError(f"project {project} has no benefit-sharing rule") from None

    def _proceeds(self, currency: str) -> ProceedsLedger:
        return self.store.singleton(proceeds_ledger_id(currency), lambda: ProceedsLedger.open(currency))

    def _policy(self) -> ReservationPolicy:
        return self.store.singleton(ReservationPolicy.create_id(), ReservationPolicy)

    def _holds(self, organisation: str) -> ReservationHolds:
        return self.store.singleton(holds_id(organisation), lambda: ReservationHolds(organisation))



def _check_reason(reason: object, what: str) -> None:
    """A refund's or cancellation's reason: 1-500 printable characters, lines allowed."""
    check_text(f"the {what}'s reason", reason, most=500, multiline=True, error=MarketError)


def _ids(*texts: str) -> list[UUID]:
    """The UUIDs among ``texts`` (a malformed id is refused later, by the command)."""
    ids = []
    for text in texts:
        try:
            ids.append(UUID(str(text)))
        except ValueError:
            pass
    return ids


def _move(blocks: list[SerialBlock], source: Account, target: Account) -> str:
    """Both halves of a transfer between two loaded accounts; returns its reference."""
    reference = public_id("KAP-TRF")
    source.send(blocks, target.name, reference)
    target.receive(blocks, source.name, reference)
    return reference


def _serial_numbers(serial: str) -> tuple[int, int, int]:
    """(batch, first, last) of a printed block serial ``KAP-{batch}-{first}-{last}-...``."""
    _prefix, batch, first, last = serial.split("-")[:4]
    return int(batch), int(first), int(last)


def _mismatch(order: Order, event: PaymentEvent) -> str | None:
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


def _first_tonnes(blocks: Sequence[SerialBlock], tonnes: int) -> list[SerialBlock]:
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


def _held_parts(held: Sequence[SerialBlock], delivered: Sequence[tuple[int, int, int]]
                ) -> list[SerialBlock]:
    """The parts of the ``delivered`` (batch, first, last) ranges still in ``held`` blocks."""
    parts = []
    for batch, first, last in delivered:
        for holding in held:
            low, high = max(first, holding.first), min(last, holding.last)
            if holding.batch == batch and low <= high:
                parts.append(holding.sub(low, high))
    return parts
