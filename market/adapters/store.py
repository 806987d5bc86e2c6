"""The store of ledger and market aggregates together: a sale's whole effect (order, serials,
listing counters, the farms' money, the payment event's de-duplication record) is one save."""

from __future__ import annotations

from ledger.adapters.store import Store
from market.adapters.transcodings import LISTING_TRANSCODINGS, MARKET_TRANSCODINGS
from market.domain.listings import Listing
from market.domain.proceeds import ProceedsLedger
from market.domain.reservations import ReservationHolds
from market.domain.roster import Catalogue, FarmRoster
from market.read.view import MarketView

# Modules that named stored events' classes before the market's folders showed its layers.
MARKET_MOVES = {f"market.{name}": f"market.domain.{name}" for name in (
    "listings", "orders", "payments", "proceeds", "reservations", "roster", "quotes")}


class MarketStore(Store):
    """The ledger's store, knowing the market's aggregates and read model too."""

    # The proceeds journal too: it keeps running totals only (its entries are in its events,
    # each sale's and payout's in an aggregate of its own, and in the view), so a snapshot
    # is as small after a million sales as after ten.
    snapshotting_intervals = {**Store.snapshotting_intervals, Listing: 100, Catalogue: 100,
                              FarmRoster: 100, ProceedsLedger: 100, ReservationHolds: 100}
    transcodings = (*Store.transcodings, *MARKET_TRANSCODINGS, *LISTING_TRANSCODINGS)
    moved_modules = {**Store.moved_modules, **MARKET_MOVES}
    view_class = MarketView
