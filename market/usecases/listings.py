"""Listing tonnes for sale, changing listings, reading them and pricing a purchase."""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import Account
from ledger.domain.errors import InsufficientCreditsError
from ledger.domain.projects import Project, project_id
from market.domain.listings import InvalidListingError, Listing, UnknownListingError
from market.domain.quotes import Quote, quote_amount, quote_estimate, quote_tonnes
from market.domain.roster import Catalogue


def listing_ids(listing_id: str) -> list[UUID]:
    """The listing's aggregate id, in a list: empty for a malformed id (which the command
    refuses later, when it loads the listing)."""
    try:
        return [UUID(str(listing_id))]
    except ValueError:
        return []


class Listings:
    """Use cases of listings (needs ``self.store``, ``self.ledger`` and ``self.now``)."""

    def create_listing(self, project: str, vintage: int, inventory_account: str,
                       price_per_tonne: Decimal, currency: str, on_offer: int,
                       minimum_quantity: int = 1, tiers: Sequence = (),
                       idempotency_key: str | None = None) -> dict:
        """Lists tonnes of a project vintage held in an inventory account. Raises
        InvalidListingError, UnknownProjectError, UnknownVintageError, UnknownAccountError,
        InsufficientCreditsError (more on offer than the account holds)."""

        def command():
            self.ledger.get_project(project).vintage(vintage)
            inventory = self.ledger.get_account(inventory_account)
            check_holds(inventory, project, vintage, on_offer)
            listing = Listing.create(
                project_registry_id=project, vintage_year=vintage,
                inventory_account=inventory.name, price_per_tonne=price_per_tonne,
                currency=currency, minimum_quantity=minimum_quantity, tiers=tiers,
                on_offer=on_offer, key=idempotency_key or "",
            )
            catalogue = self._catalogue()
            catalogue.add(str(listing.id))
            return [listing, catalogue], {"listing_id": str(listing.id)}

        fields = {"project": project, "vintage": vintage,
                  "inventory_account": inventory_account, "price_per_tonne": price_per_tonne,
                  "currency": currency, "on_offer": on_offer,
                  "minimum_quantity": minimum_quantity, "tiers": tiers}
        return self.store.run("create_listing", fields, idempotency_key, command)

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
                inventory = self.ledger.get_account(listing.inventory_account)
                check_holds(inventory, listing.project_registry_id, listing.vintage_year,
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

        fields = {"listing_id": listing_id, "on_offer": on_offer, "status": status,
                  "price_per_tonne": price_per_tonne, "tiers": tiers,
                  "minimum_quantity": minimum_quantity}
        return self.store.run("change_listing", fields, None, command)

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
        position = self.store.recorder.max_notification_id() or 0
        cached = self._listings_seen
        if cached is None or cached[0] != position:
            fresh = self.store.read_many([UUID(str(listing_id))
                                          for listing_id in self._catalogue().listing_ids])
            registry_ids = sorted({listing.project_registry_id for listing in fresh})
            projects = self.store.read_many([project_id(registry_id)
                                             for registry_id in registry_ids])
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

    def _catalogue(self) -> Catalogue:
        return self.store.singleton(Catalogue.create_id(), Catalogue)


def check_holds(inventory: Account, project: str, vintage: int, quantity: int) -> None:
    """Raises unless ``inventory`` holds ``quantity`` whole tonnes of the project vintage:
    InvalidListingError, InsufficientCreditsError."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidListingError(f"the quantity on offer must be whole tonnes, not {quantity!r}")
    held = sum(b.quantity for b in inventory.blocks
               if b.project == project and b.vintage == vintage)
    if quantity > held:
        raise InsufficientCreditsError(
            f"{inventory.name} holds {held} t of {project} {vintage}; cannot offer {quantity} t")
