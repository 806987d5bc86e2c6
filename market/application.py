"""The market's service layer: listings, quotes, orders, payments and proceeds.

``Marketplace`` extends the ledger's application, so ledger and market aggregates live in one
event store and a sale's whole effect (order state, serials moving, listing counters, money
allocated to the farms, and the de-duplication record of the provider's event) is one
atomic save: exactly once, whatever the provider redelivers or however a process dies. Its
use cases live in ``market.usecases``, one module per area.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

from ledger.application import Ledger
from ledger.domain.projects import Project
from market.adapters.store import MarketStore
from market.domain.listings import Listing
from market.domain.payments import OfflinePaymentProvider, PaymentProvider
from market.settings import RESERVATION_MINUTES
from market.usecases.listings import Listings
from market.usecases.orders import Orders
from market.usecases.payments import Payments
from market.usecases.proceeds import Proceeds
from market.usecases.refunds import Refunds
from market.usecases.reservations import Reservations


class Marketplace(Listings, Reservations, Orders, Payments, Refunds, Proceeds,
                  Ledger):
    """Kapok: the ledger plus the market, over one event store."""

    store_class = MarketStore

    def __init__(self, env: dict | None = None, database: str | None = None,
                 payments: PaymentProvider | None = None,
                 reservation_minutes: int = RESERVATION_MINUTES,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(env=env, database=database)
        self.payments = payments or OfflinePaymentProvider()
        self._listings_seen: tuple[int, list[Listing], dict[str, Project]] | None = None
        self.reservation = timedelta(minutes=reservation_minutes)
        self.now = clock or (lambda: datetime.now(timezone.utc))
