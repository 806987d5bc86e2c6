"""The market's read model: the order book and the proceeds journals' postings, beside the
ledger's tables and caught up with them in the same transactions (one tracked position)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from ledger.adapters.sql_recorders import Statement
from market.domain.orders import Order
from market.read.proceeds_view import ProceedsView

# One row per order, holding everything ``Marketplace.order_summary`` shows (serials as a JSON
# list), so pages of orders need no aggregate. A store made before a column was added has its
# view rebuilt from the event log, not migrated (``ledger.adapters.sql_recorders``).
ORDER_TABLES = [
    """CREATE TABLE IF NOT EXISTS kapok_orders (
        aggregate_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, buyer_org TEXT NOT NULL,
        buyer_account TEXT NOT NULL, listing_id TEXT NOT NULL, project TEXT NOT NULL,
        vintage INTEGER NOT NULL, tonnes BIGINT NOT NULL, unit_price TEXT NOT NULL,
        total_minor BIGINT NOT NULL, currency TEXT NOT NULL, retire INTEGER NOT NULL,
        state TEXT NOT NULL, placed_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        reserved_until TEXT, serials TEXT NOT NULL, payment_id TEXT, delivery_reference TEXT,
        escrow_account TEXT, expires_at TEXT)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_buyer ON kapok_orders (buyer_org, placed_at)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_state ON kapok_orders (state, placed_at)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_due ON kapok_orders (state, expires_at)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_escrow ON kapok_orders (escrow_account)""",
]
INSERT_ORDER = (
    "INSERT INTO kapok_orders (aggregate_id, order_id, buyer_org, buyer_account, listing_id, "
    "project, vintage, tonnes, unit_price, total_minor, currency, retire, state, placed_at, "
    "updated_at, serials) VALUES (:id, :order_id, :org, :account, :listing, :project, "
    ":vintage, :tonnes, :unit_price, :total, :currency, :retire, 'draft', :at, :at, '[]')"
)

_STATE_OF = {
    Order.Reserved: "reserved", Order.Paid: "paid", Order.Fulfilled: "fulfilled",
    Order.Expired: "expired", Order.Cancelled: "cancelled", Order.Refunded: "refunded",
}
# What an order's events set in its row, as the order's own methods set its attributes.
_SET_PAYMENT = ("UPDATE kapok_orders SET payment_id = :payment_id, updated_at = :updated_at "
                "WHERE aggregate_id = :id")
_SET_STATE = ("UPDATE kapok_orders SET state = :state, updated_at = :updated_at "
              "WHERE aggregate_id = :id")
_SET_RESERVED = (
    "UPDATE kapok_orders SET state = :state, reserved_until = :reserved_until, "
    "serials = :serials, escrow_account = :escrow_account, expires_at = :expires_at, "
    "updated_at = :updated_at WHERE aggregate_id = :id")
_SET_RELEASED = ("UPDATE kapok_orders SET state = :state, serials = '[]', "
                 "updated_at = :updated_at WHERE aggregate_id = :id")
_SET_FULFILLED = ("UPDATE kapok_orders SET state = :state, delivery_reference = "
                  ":delivery_reference, updated_at = :updated_at WHERE aggregate_id = :id")


class MarketView(ProceedsView):
    tables = ProceedsView.tables + ORDER_TABLES

    def _translate(self, event, position: int, deltas: dict, accounts: dict):
        if isinstance(event, Order.Placed):
            return [(INSERT_ORDER, {
                "id": str(event.originator_id), "order_id": event.order_id,
                "org": event.buyer_org, "account": event.buyer_account,
                "listing": event.listing_id, "project": event.project,
                "vintage": event.vintage, "tonnes": event.tonnes,
                "unit_price": str(event.unit_price), "total": event.total_minor,
                "currency": event.currency, "retire": int(event.retirement is not None),
                "at": event.timestamp.isoformat()})]
        update = _order_update(event)
        if update is None:
            return super()._translate(event, position, deltas, accounts)
        return [update]

    def orders(self, buyer_org: str | None = None, state: str | None = None,
               query: str | None = None, limit: int = 50, offset: int = 0
               ) -> tuple[list[dict], int]:
        """A page of orders, newest first, and how many match in all. ``query`` matches
        part of the order id or the buyer organisation, case-insensitively."""
        where, params = ["1 = 1"], {}
        if buyer_org is not None:
            where.append("buyer_org = :org")
            params["org"] = buyer_org
        if state:
            where.append("state = :state")
            params["state"] = state
        if query:
            where.append("(UPPER(order_id) LIKE :q ESCAPE '!' OR UPPER(buyer_org) LIKE :q ESCAPE '!')")
            escaped = re.sub(r"([!%_])", r"!\1", query.strip().upper())
            params["q"] = f"%{escaped}%"
        clause = " AND ".join(where)
        total = self.recorder.query(f"SELECT COUNT(*) AS n FROM kapok_orders WHERE {clause}",
                                    params)[0]["n"]
        rows = self.recorder.query(
            f"SELECT * FROM kapok_orders WHERE {clause} "
            "ORDER BY placed_at DESC, order_id LIMIT :limit OFFSET :offset",
            {**params, "limit": max(0, int(limit)), "offset": max(0, int(offset))})
        return [_order_row(row) for row in rows], total

    def due_reservations(self, now: datetime) -> list[str]:
        """The orders still reserved whose reservation ended at or before ``now``."""
        rows = self.recorder.query(
            "SELECT order_id FROM kapok_orders WHERE state = 'reserved' AND expires_at <= :now "
            "ORDER BY expires_at, order_id", {"now": _utc_text(now)})
        return [row["order_id"] for row in rows]

    def order_of_escrow(self, account: str) -> str | None:
        """The order whose reservation recorded this escrow account, if any."""
        rows = self.recorder.query(
            "SELECT order_id FROM kapok_orders WHERE escrow_account = :account",
            {"account": account})
        return rows[0]["order_id"] if rows else None

    def order_states(self) -> dict[str, int]:
        rows = self.recorder.query(
            "SELECT state, COUNT(*) AS n FROM kapok_orders GROUP BY state", {})
        return {row["state"]: row["n"] for row in rows}


def _order_update(event) -> Statement | None:
    """The statement that records an order's event in the order's row; None for an event
    that is not an order's."""
    state = _STATE_OF.get(type(event))
    if state is None and not isinstance(event, Order.PaymentAttached):
        return None
    params = {"id": str(event.originator_id), "updated_at": event.timestamp.isoformat()}
    if isinstance(event, Order.PaymentAttached):
        return _SET_PAYMENT, {**params, "payment_id": event.payment_id}
    params["state"] = state
    if isinstance(event, Order.Reserved):
        return _SET_RESERVED, {**params, "reserved_until": event.until.isoformat(),
                               "serials": json.dumps(event.serials),
                               "escrow_account": event.escrow_account,
                               "expires_at": _utc_text(event.until)}
    if isinstance(event, (Order.Expired, Order.Cancelled)):
        return _SET_RELEASED, params  # the serials go back with the reservation
    if isinstance(event, Order.Fulfilled):
        return _SET_FULFILLED, {**params, "delivery_reference": event.delivery_reference}
    return _SET_STATE, params


def _utc_text(moment: datetime) -> str:
    """``moment`` in UTC, in a fixed width: such texts sort as their times do, whatever the
    database's collation (isoformat drops the microseconds when there are none)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _order_row(row: Any) -> dict:
    """The row as ``Marketplace.order_summary`` shows the order, with the view's own columns
    (placed_at, updated_at, listing_id, aggregate_id) besides."""
    data = dict(row)
    data["retire"] = bool(data["retire"])
    data["serials"] = json.loads(data["serials"])
    return data
