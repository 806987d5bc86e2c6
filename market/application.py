"""The market's service layer: listings, quotes, orders, payments and proceeds, composed with
the ledger over one store.

``Marketplace`` holds the ledger (``self.ledger``) and shares its store, so ledger and market
aggregates live in one event store and a sale's whole effect (order state, serials moving,
listing counters, money allocated to the farms, and the de-duplication record of the
provider's event) is one atomic save: exactly once, whatever the provider redelivers or
however a process dies. Its own use cases live in ``market.usecases``, one module per area;
the registry's (projects, issuance, transfers, retirements) are the ledger's:
``market.ledger.retire(...)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

from ledger.application import Ledger, StoreBacked
from ledger.domain.projects import Project
from ledger.settings import KAPOK_RESERVATION_MINUTES
from market.adapters.store import MarketStore
from market.domain.listings import Listing
from market.domain.payments import OfflinePaymentProvider, PaymentProvider
from market.usecases.listings import Listings
from market.usecases.orders import Orders
from market.usecases.payments import Payments
from market.usecases.proceeds import Proceeds
from market.usecases.refunds import Refunds
from market.usecases.registry_side import MarketSaleSide
from market.usecases.reservations import Reservations


class Marketplace(StoreBacked, Listings, Reservations, Orders, Payments, Refunds, Proceeds):
    """Kapok's market: its use cases, with the ledger's (``self.ledger``) over one store."""

    def __init__(self, env: dict | None = None, database: str | None = None,
                 payments: PaymentProvider | None = None,
                 reservation_minutes: int = KAPOK_RESERVATION_MINUTES.default,
                 clock: Callable[[], datetime] | None = None):
        self.ledger = Ledger(store=MarketStore(env=env, database=database),
                             sale_side=MarketSaleSide(self))
        self.store = self.ledger.store
        self.payments = payments or OfflinePaymentProvider()
        self._listings_seen: tuple[int, list[Listing], dict[str, Project]] | None = None
        self.reservation = timedelta(minutes=reservation_minutes)
        self.now = clock or (lambda: datetime.now(timezone.utc))
