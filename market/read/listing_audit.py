"""Listings' counters against the tonnes their escrow and inventory accounts hold, for the
auditor: folded from the stored events in the verifier's one pass over them.

A listing counts ``reserved`` the tonnes its pending orders moved from the inventory into
their escrow accounts, in the same save; so an event added, removed or edited in one of them
alone shows as a difference here, even where each aggregate on its own looks sound.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping
from uuid import UUID

from ledger.audit.verification import VerifyReport, verify
from ledger.read.replay import LedgerState, Violation, stored_events
from market.domain.listings import CLOSED, Listing, validate_listing
from market.domain.orders import Order


class ListingTally:
    """Each listing as its stored events make it, and which listing each escrow account
    reserves for."""

    def __init__(self) -> None:
        self.listings: dict[UUID, Listing] = {}
        self.listing_of_order: dict[UUID, str] = {}
        self.listing_of_escrow: dict[str, str] = {}
        self.problems: list[Violation] = []

    def observe(self, event, position: int) -> None:
        if isinstance(event, Listing.Event):
            try:
                self.listings[event.originator_id] = event.mutate(
                    self.listings.get(event.originator_id))
            except Exception as error:  # a forged event may not apply: say so, go on
                self.problems.append(Violation(
                    "listing_counters", f"listing {event.originator_id}: event "
                    f"{type(event).__qualname__} does not apply ({error})", position))
        elif isinstance(event, Order.Placed):
            self.listing_of_order[event.originator_id] = event.listing_id
        elif isinstance(event, Order.Reserved):
            listing_id = self.listing_of_order.get(event.originator_id)
            if listing_id is not None:
                self.listing_of_escrow[event.escrow_account] = listing_id

    def violations(self, state: LedgerState) -> list[Violation]:
        """What ``validate_listing_counters`` finds in the final state, after the problems
        seen while folding."""
        escrow: dict[str, int] = defaultdict(int)
        inventory: dict[tuple[str, str, int], int] = defaultdict(int)
        for name, blocks in state.holdings.items():
            listing_id = self.listing_of_escrow.get(name)
            for block in blocks:
                if listing_id is not None:
                    escrow[listing_id] += block.quantity
                inventory[name, block.project, block.vintage] += block.quantity
        return self.problems + validate_listing_counters(self.listings.values(), escrow,
                                                         inventory)


def validate_listing_counters(listings: Iterable[Listing], escrow_tonnes: Mapping[str, int],
                              held: Mapping[tuple[str, str, int], int]) -> list[Violation]:
    """Every listing whose counters its accounts do not bear out: a counter below zero or
    more reserved and sold than offered; ``reserved`` unequal to the tonnes in its orders'
    escrow accounts (``escrow_tonnes`` by listing id); or, while it sells, more
    ``available`` than its inventory holds of its vintage (``held`` by account, project and
    vintage)."""
    violations = []
    for listing in listings:
        violations += [Violation("listing_counters", problem)
                       for problem in validate_listing(listing)]
        in_escrow = escrow_tonnes.get(str(listing.id), 0)
        if listing.reserved != in_escrow:
            violations.append(Violation(
                "listing_counters", f"listing {listing.id} counts {listing.reserved} t reserved "
                f"but its orders' escrow accounts hold {in_escrow} t"))
        in_inventory = held.get(
            (listing.inventory_account, listing.project_registry_id, listing.vintage_year), 0)
        if listing.status != CLOSED and listing.available > in_inventory:
            violations.append(Violation(
                "listing_counters", f"listing {listing.id} counts {listing.available} t "
                f"available but {listing.inventory_account} holds {in_inventory} t of "
                f"{listing.project_registry_id} {listing.vintage_year}"))
    return violations


def listing_violations(app) -> list[Violation]:
    """Every listing's counters checked against its accounts, replaying the whole log."""
    tally, state = ListingTally(), LedgerState()
    for position, event in stored_events(app):
        state.apply(event, position)
        tally.observe(event, position)
    return tally.violations(state)


def verify_with_listings(app, public_pem: bytes, **options) -> VerifyReport:
    """The ledger's ``verify``, with the listings' counters checked in the same pass."""
    tally = ListingTally()
    report = verify(app, public_pem, observe=tally.observe, **options)
    report.problems += tally.violations(report.state)
    return report
