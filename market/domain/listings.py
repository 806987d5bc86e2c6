"""Listings: tonnes of one project vintage offered for sale, their price and their counters.

    active <-> paused;  active | paused -> closed (final)

``on_offer`` is what the operator offers; ``reserved`` counts tonnes held for pending orders
and ``sold`` those paid for, so ``available = on_offer - reserved - sold`` never goes below 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.domain.accounts import check_account_name
from ledger.domain.errors import ConflictError, InvalidCommandError, InvalidInputError, NotFoundError
from ledger.domain.ids import named_id
from ledger.domain.projects import FIRST_VINTAGE, Project
from market.domain.errors import MarketError
from market.domain.money import currency as known_currency

ACTIVE, PAUSED, CLOSED = "active", "paused", "closed"
TRANSITIONS = {ACTIVE: (PAUSED, CLOSED), PAUSED: (ACTIVE, CLOSED), CLOSED: ()}
LAST_VINTAGE = 2100
MAX_PRICE = Decimal("1e9")
MAX_PRICE_PLACES = 6
MAX_TIERS = 20
MAX_TONNES = 10**12
MAX_TEXT_LENGTH = 200  # keys, references and reasons
_REGISTRY_ID = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", re.ASCII)


class ListingError(MarketError, InvalidInputError):
    pass


class InvalidListingError(ListingError):
    """A listing's terms are not acceptable: price, currency, tiers, quantities."""


class ListingStatusError(ListingError):
    """A status change the listing's state does not allow (closed is final)."""


class ListingNotActiveError(ListingError, ConflictError):
    """Tonnes were asked of a paused or closed listing."""


class NotEnoughAvailableError(ListingError, ConflictError):
    """More tonnes were asked than the listing has available (or reserved, to sell)."""


class UnknownListingError(MarketError, NotFoundError):
    """No listing has the id asked for (or the id is malformed)."""


class ListingProjectMismatchError(ListingError):
    """A listing was shown with a project or vintage it does not belong to."""


@dataclass(frozen=True)
class PriceTier:
    """From ``min_tonnes`` up, every tonne costs ``price_per_tonne``."""

    min_tonnes: int
    price_per_tonne: Decimal


def listing_id_for(key: str) -> UUID:
    """A deterministic listing id, so creating the same listing twice fails in the store."""
    return named_id("listing", key)


def _whole(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_TONNES:
        raise InvalidListingError(f"{name} must be a whole number from {least}, not {value!r}")
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
        raise InvalidListingError(f"{name} is text of at most {MAX_TEXT_LENGTH} characters")
    return value


def _price(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 < value <= MAX_PRICE:
        raise InvalidListingError(f"{name} must be a positive Decimal up to {MAX_PRICE:,f}, "
                                  f"not {value!r}")
    if value.normalize().as_tuple().exponent < -MAX_PRICE_PLACES:
        raise InvalidListingError(f"{name} {value} has more than {MAX_PRICE_PLACES} decimal places")
    return value


def check_terms(price_per_tonne: Decimal, currency: str, minimum_quantity: int,
                tiers: Sequence[PriceTier]) -> None:
    """Raises InvalidListingError unless the price, currency, minimum and tiers make sense:
    tiers start above the minimum, thresholds increase and prices never rise."""
    _price("price per tonne", price_per_tonne)
    try:
        known_currency(currency)
    except MarketError as error:
        raise InvalidListingError(str(error)) from None
    _whole("minimum quantity", minimum_quantity, 1)
    if len(tiers) > MAX_TIERS:
        raise InvalidListingError(f"at most {MAX_TIERS} volume tiers")
    threshold, price = minimum_quantity, price_per_tonne
    for tier in tiers:
        if not isinstance(tier, PriceTier):
            raise InvalidListingError(f"a volume tier is a PriceTier, not {tier!r}")
        _whole("a tier's minimum tonnes", tier.min_tonnes, 1)
        _price("a tier's price per tonne", tier.price_per_tonne)
        if tier.min_tonnes <= threshold:
            raise InvalidListingError(
                f"tier thresholds must increase from above the minimum quantity "
                f"{minimum_quantity}: {tier.min_tonnes} follows {threshold}"
            )
        if tier.price_per_tonne > price:
            raise InvalidListingError(
                f"tier prices may not rise: {tier.price_per_tonne} from {tier.min_tonnes} t "
                f"is above {price}"
            )
        threshold, price = tier.min_tonnes, tier.price_per_tonne


class Listing(Aggregate):
    """Tonnes of one project vintage for sale from an inventory account."""
    # Containers of immutable values only: a copy for a command copies them shallowly
    # (ledger.application.copy_aggregate).
    flat_containers = frozenset({"tiers"})

    @classmethod
    def create(cls, *, project_registry_id: str, vintage_year: int, inventory_account: str,
               price_per_tonne: Decimal, currency: str, minimum_quantity: int = 1,
               tiers: Sequence[PriceTier] = (), on_offer: int = 0, key: str = "") -> Listing:
        """A new active listing; raises InvalidListingError. Its id is random, or with a
        ``key`` (e.g. an idempotency key) ``listing_id_for(key)``, so that creating the same
        listing twice fails in the event store."""
        if not isinstance(project_registry_id, str) or not _REGISTRY_ID.fullmatch(
                project_registry_id):
            raise InvalidListingError(f"invalid project registry id {project_registry_id!r}")
        if isinstance(vintage_year, bool) or not isinstance(vintage_year, int) or not (
                FIRST_VINTAGE <= vintage_year <= LAST_VINTAGE):
            raise InvalidListingError(
                f"invalid vintage {vintage_year!r}: from {FIRST_VINTAGE} to {LAST_VINTAGE}"
            )
        try:
            check_account_name(inventory_account)
        except InvalidCommandError as error:
            raise InvalidListingError(str(error)) from None
        tiers = tuple(tiers)
        check_terms(price_per_tonne, currency, minimum_quantity, tiers)
        _whole("quantity on offer", on_offer, 0)
        _text("a listing key", key)
        return cls(project_registry_id.upper(), vintage_year, inventory_account,
                   price_per_tonne, currency, minimum_quantity, tiers, on_offer, key)

    @staticmethod
    def create_id(key: str) -> UUID:
        return listing_id_for(key) if key else uuid4()

    @event("Listed")
    def __init__(self, project_registry_id: str, vintage_year: int, inventory_account: str,
                 price_per_tonne: Decimal, currency: str, minimum_quantity: int,
                 tiers: tuple[PriceTier, ...], on_offer: int, key: str):
        self.key = key
        self.project_registry_id = project_registry_id
        self.vintage_year = vintage_year
        self.inventory_account = inventory_account
        self.price_per_tonne = price_per_tonne
        self.currency = currency
        self.minimum_quantity = minimum_quantity
        self.tiers = tuple(tiers)  # stored events give a list back
        self.on_offer = on_offer
        self.status = ACTIVE
        self.reserved = 0
        self.sold = 0

    @property
    def available(self) -> int:
        return self.on_offer - self.reserved - self.sold

    def price_breaks(self) -> list[tuple[int, Decimal]]:
        """(first tonne, price per tonne) of each price band, lowest first."""
        return [(1, self.price_per_tonne)] + [(t.min_tonnes, t.price_per_tonne) for t in self.tiers]

    def unit_price(self, quantity: int) -> Decimal:
        """The price per tonne when buying ``quantity`` tonnes: the tier reached, else base."""
        quantity = _whole("quantity", quantity, 1)
        return [price for first, price in self.price_breaks() if first <= quantity][-1]

    # --- Status ---

    def _check_transition(self, to: str) -> None:
        if to not in TRANSITIONS[self.status]:
            raise ListingStatusError(f"listing {self.id} is {self.status}: it cannot become {to}")

    def pause(self) -> None:
        self._check_transition(PAUSED)
        self._paused()

    def resume(self) -> None:
        self._check_transition(ACTIVE)
        self._resumed()

    def close(self, reason: str = "") -> None:
        """Closes for good. Tonnes already reserved may still be released or sold."""
        self._check_transition(CLOSED)
        self._closed(_text("a reason", reason))

    @event("Paused")
    def _paused(self) -> None:
        self.status = PAUSED

    @event("Resumed")
    def _resumed(self) -> None:
        self.status = ACTIVE

    @event("Closed")
    def _closed(self, reason: str) -> None:
        self.status = CLOSED

    # --- Quantities ---

    def set_on_offer(self, quantity: int) -> None:
        """The operator changes how many tonnes are offered, never below reserved + sold."""
        quantity = _whole("quantity on offer", quantity, 0)
        if self.status == CLOSED:
            raise ListingStatusError(f"listing {self.id} is closed: its offer cannot change")
        if quantity < self.reserved + self.sold:
            raise NotEnoughAvailableError(
                f"listing {self.id}: cannot offer {quantity} t, {self.reserved} t are reserved "
                f"and {self.sold} t sold"
            )
        if quantity != self.on_offer:
            self._offer_changed(quantity)

    def reserve(self, quantity: int, reference: str = "") -> None:
        """Holds tonnes for a pending order (``reference`` names it, for the record)."""
        quantity = _whole("quantity to reserve", quantity, 1)
        _text("a reference", reference)
        if self.status != ACTIVE:
            raise ListingNotActiveError(
                f"listing {self.id} is {self.status}: nothing can be reserved"
            )
        if quantity > self.available:
            raise NotEnoughAvailableError(
                f"listing {self.id} has {self.available} t available, not {quantity}"
            )
        self._reserved(quantity, reference)

    def release(self, quantity: int, reference: str = "") -> None:
        """Gives reserved tonnes back (an order expired or was cancelled), in any status."""
        self._check_reserved(_whole("quantity to release", quantity, 1))
        self._released(quantity, _text("a reference", reference))

    def sell(self, quantity: int, reference: str = "") -> None:
        """Reserved tonnes were paid for: they count as sold, in any status."""
        self._check_reserved(_whole("quantity to sell", quantity, 1))
        self._sold(quantity, _text("a reference", reference))

    def reprice(self, price_per_tonne: Decimal, tiers: Sequence[PriceTier] = (),
                minimum_quantity: int | None = None) -> None:
        """New terms for orders placed from now on; orders already placed keep their price."""
        if self.status == CLOSED:
            raise ListingStatusError(f"listing {self.id} is closed: its price cannot change")
        minimum = self.minimum_quantity if minimum_quantity is None else minimum_quantity
        tiers = tuple(tiers)
        check_terms(price_per_tonne, self.currency, minimum, tiers)
        self._repriced(price_per_tonne, tiers, minimum)

    def take_back(self, quantity: int, reference: str = "") -> None:
        """Sold tonnes came back (the sale was refunded and the buyer still held them):
        they are on offer again, in any status."""
        quantity = _whole("quantity taken back", quantity, 1)
        if quantity > self.sold:
            raise NotEnoughAvailableError(
                f"listing {self.id} has sold {self.sold} t, cannot take back {quantity}")
        self._taken_back(quantity, _text("a reference", reference))

    @event("Repriced")
    def _repriced(self, price_per_tonne: Decimal, tiers: tuple, minimum_quantity: int) -> None:
        self.price_per_tonne = price_per_tonne
        self.tiers = tuple(tiers)
        self.minimum_quantity = minimum_quantity

    @event("TakenBack")
    def _taken_back(self, quantity: int, reference: str) -> None:
        self.sold -= quantity

    def _check_reserved(self, quantity: int) -> None:
        if quantity > self.reserved:
            raise NotEnoughAvailableError(
                f"listing {self.id} has {self.reserved} t reserved, not {quantity}"
            )

    @event("OfferChanged")
    def _offer_changed(self, on_offer: int) -> None:
        self.on_offer = on_offer

    @event("Reserved")
    def _reserved(self, quantity: int, reference: str) -> None:
        self.reserved += quantity

    @event("Released")
    def _released(self, quantity: int, reference: str) -> None:
        self.reserved -= quantity

    @event("Sold")
    def _sold(self, quantity: int, reference: str) -> None:
        self.reserved -= quantity
        self.sold += quantity


def validate_listing(listing: Listing) -> list[str]:
    """Every broken counter invariant of a listing (empty when sound), for the auditor."""
    problems = []
    if min(listing.on_offer, listing.reserved, listing.sold) < 0:
        problems.append(f"listing {listing.id}: a counter is negative")
    if listing.available < 0:
        problems.append(f"listing {listing.id}: reserved + sold exceed the {listing.on_offer} t "
                        f"on offer")
    if listing.status not in TRANSITIONS:
        problems.append(f"listing {listing.id}: unknown status {listing.status!r}")
    return problems


def listing_summary(listing: Listing, project: Project) -> dict[str, Any]:
    """What a buyer sees of a listing: its terms with the project's facts (buffer share,
    labels of the project and the vintage). Raises ListingProjectMismatchError if the project
    is not the listing's or has no such vintage."""
    if project.registry_id.upper() != listing.project_registry_id:
        raise ListingProjectMismatchError(
            f"listing {listing.id} is for project {listing.project_registry_id}, "
            f"not {project.registry_id}"
        )
    vintage = project.vintages.get(listing.vintage_year)
    if vintage is None:
        raise ListingProjectMismatchError(
            f"listing {listing.id}: project {project.registry_id} has no vintage "
            f"{listing.vintage_year}"
        )
    details = project.details
    return {
        "listing_id": str(listing.id),
        "status": listing.status,
        "project_registry_id": details.registry_id,
        "project_name": details.name,
        "proponent": details.proponent,
        "country": details.country,
        "region": details.region,
        "project_type": details.project_type,
        "methodology": details.methodology,
        "sdgs": list(details.sdgs),
        "vintage_year": vintage.year,
        "labels": list(dict.fromkeys(details.labels + vintage.labels)),
        "corresponding_adjustment": vintage.corresponding_adjustment,
        "buffer_percent": details.buffer_percent,
        "price_per_tonne": listing.price_per_tonne,
        "currency": listing.currency,
        "minimum_quantity": listing.minimum_quantity,
        "tiers": [{"min_tonnes": t.min_tonnes, "price_per_tonne": t.price_per_tonne}
                  for t in listing.tiers],
        "on_offer": listing.on_offer,
        "reserved": listing.reserved,
        "sold": listing.sold,
        "available": listing.available,
    }

