"""What one organisation may hold reserved: the operators' caps, and each organisation's holds.

A reservation takes tonnes off the market until it is paid, cancelled or expires, so an
organisation that reserves without paying keeps everyone else from buying. Operators cap
what one organisation may hold reserved on one listing (a marketplace-wide default, or a cap
of the listing's own) and on all listings together. Each organisation's holds are an
aggregate saved in the same save as the reservation it counts, so two orders placed at once
cannot both pass the cap: the second save finds the holds changed and runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import ConflictError, InvalidInputError
from ledger.domain.ids import named_id
from market.domain.errors import MarketError

# Enough for any one company's purchase at a time; far from a listing's whole stock.
DEFAULT_PER_LISTING = 1_000
DEFAULT_PER_ORGANISATION = 2_000
MAX_CAP = 10**12


class ReservationCapError(MarketError, ConflictError):
    """An order would take an organisation's reserved tonnes above an operator's cap."""


class InvalidReservationCapError(MarketError, InvalidInputError):
    """A cap that is not a whole number of tonnes from 1."""


@dataclass(frozen=True)
class ReservationCaps:
    """The most tonnes one organisation may hold reserved on a listing and in all."""

    per_listing: int
    per_organisation: int


def check_cap(value: object, what: str) -> int:
    """``value`` as a cap in whole tonnes; raises InvalidReservationCapError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAP:
        raise InvalidReservationCapError(
            f"the {what} must be a whole number of tonnes from 1 to {MAX_CAP:,}, not {value!r}")
    return value


class ReservationPolicy(Aggregate):
    """The operators' caps, kept in the store so every process applies the same ones. What
    the operators never set is the default."""
    flat_containers = frozenset({"listing_caps"})  # immutable values only: see copy_aggregate

    @staticmethod
    def create_id() -> UUID:
        return named_id("reservation-policy", "market")

    @event("Started")
    def __init__(self) -> None:
        self.per_listing: int | None = None
        self.per_organisation: int | None = None
        self.listing_caps: dict[str, int] = {}  # listing id -> its own cap per organisation

    def caps_for(self, listing_id: str) -> ReservationCaps:
        return ReservationCaps(
            self.listing_caps.get(listing_id, self.per_listing or DEFAULT_PER_LISTING),
            self.per_organisation or DEFAULT_PER_ORGANISATION)

    @property
    def defaults(self) -> ReservationCaps:
        """The caps of a listing without one of its own."""
        return self.caps_for("")

    def set_caps(self, per_listing: int, per_organisation: int) -> None:
        caps = ReservationCaps(check_cap(per_listing, "cap per listing"),
                               check_cap(per_organisation, "cap per organisation"))
        if caps != ReservationCaps(self.per_listing, self.per_organisation):
            self._caps_set(caps.per_listing, caps.per_organisation)

    def set_listing_cap(self, listing_id: str, cap: int | None) -> None:
        """The listing's own cap per organisation; None: the default's."""
        if cap is not None:
            check_cap(cap, "listing's cap per organisation")
        if self.listing_caps.get(listing_id) != cap:
            self._listing_cap_set(listing_id, cap)

    @event("CapsSet")
    def _caps_set(self, per_listing: int, per_organisation: int) -> None:
        self.per_listing, self.per_organisation = per_listing, per_organisation

    @event("ListingCapSet")
    def _listing_cap_set(self, listing_id: str, cap: int | None) -> None:
        caps = {**self.listing_caps, listing_id: cap}
        self.listing_caps = {key: value for key, value in caps.items() if value is not None}


def holds_id(organisation: str) -> UUID:
    return named_id("reservation-holds", organisation)


class ReservationHolds(Aggregate):
    """The tonnes an organisation holds reserved, by order: held when an order reserves,
    let go when it is paid, cancelled, released or expires."""
    flat_containers = frozenset({"tonnes_of", "listing_of"})  # see copy_aggregate

    @staticmethod
    def create_id(organisation: str) -> UUID:
        return holds_id(organisation)

    @event("Opened")
    def __init__(self, organisation: str) -> None:
        self.organisation = organisation
        self.tonnes_of: dict[str, int] = {}  # order id -> tonnes
        self.listing_of: dict[str, str] = {}  # order id -> listing id

    @property
    def total(self) -> int:
        return sum(self.tonnes_of.values())

    def on_listing(self, listing_id: str) -> int:
        return sum(self.tonnes_of[order] for order, listing in self.listing_of.items()
                   if listing == listing_id)

    def check_room(self, listing_id: str, listing_name: str, tonnes: int,
                   caps: ReservationCaps) -> None:
        """Raises ReservationCapError unless ``tonnes`` more fit under both caps."""
        on_listing, total = self.on_listing(listing_id), self.total
        if on_listing + tonnes > caps.per_listing:
            raise ReservationCapError(
                f"{self.organisation} may hold at most {caps.per_listing:,} t reserved on "
                f"listing {listing_name} and already holds {on_listing:,} t there: "
                + _room_left(caps.per_listing - on_listing, tonnes))
        if total + tonnes > caps.per_organisation:
            raise ReservationCapError(
                f"{self.organisation} may hold at most {caps.per_organisation:,} t reserved "
                f"in all and already holds {total:,} t: "
                + _room_left(caps.per_organisation - total, tonnes))

    def hold(self, order_id: str, listing_id: str, tonnes: int) -> None:
        if order_id not in self.tonnes_of:
            self._held(order_id, listing_id, tonnes)

    def let_go(self, order_id: str) -> bool:
        """Stops counting the order's tonnes; False if they were not counted (an order
        reserved before holds were kept, or let go already)."""
        if order_id not in self.tonnes_of:
            return False
        self._let_go(order_id)
        return True

    @event("Held")
    def _held(self, order_id: str, listing_id: str, tonnes: int) -> None:
        self.tonnes_of = {**self.tonnes_of, order_id: tonnes}
        self.listing_of = {**self.listing_of, order_id: listing_id}

    @event("LetGo")
    def _let_go(self, order_id: str) -> None:
        self.tonnes_of = {key: value for key, value in self.tonnes_of.items() if key != order_id}
        self.listing_of = {key: value for key, value in self.listing_of.items()
                           if key != order_id}


def validate_holds(holds: ReservationHolds, reserved: dict[str, int]) -> list[str]:
    """Every difference between what an organisation's holds count and its ``reserved``
    orders (order id -> tonnes), for the auditor: empty when they agree."""
    problems = [f"{holds.organisation}: order {order_id} holds {tonnes} t reserved but the "
                f"holds count {holds.tonnes_of.get(order_id, 0)} t"
                for order_id, tonnes in sorted(reserved.items())
                if holds.tonnes_of.get(order_id) != tonnes]
    problems += [f"{holds.organisation}: the holds count order {order_id}, which holds no "
                 "reservation" for order_id in sorted(set(holds.tonnes_of) - set(reserved))]
    return problems


def _room_left(room: int, tonnes: int) -> str:
    advice = "pay for or cancel a reserved order first"
    if room <= 0:
        return f"no more can be reserved now; {advice}"
    return f"{tonnes:,} t would exceed that; order at most {room:,} t, or {advice}"
