"""The market's read model: the order book and the proceeds journals' postings, beside the
ledger's tables and caught up with them in the same transactions (one tracked position)."""

from __future__ import annotations

import re
from typing import Any

from market.orders import Order
from market.proceeds_view import ProceedsView

ORDER_TABLES = [
    """CREATE TABLE IF NOT EXISTS kapok_orders (
        aggregate_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, buyer_org TEXT NOT NULL,
        buyer_account TEXT NOT NULL, listing_id TEXT NOT NULL, project TEXT NOT NULL,
        vintage INTEGER NOT NULL, tonnes BIGINT NOT NULL, total_minor BIGINT NOT NULL,
        currency TEXT NOT NULL, retire INTEGER NOT NULL, state TEXT NOT NULL,
        placed_at TEXT NOT NULL, updated_at TEXT NOT NULL, reserved_until TEXT,
        payment_id TEXT, delivery_reference TEXT)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_buyer ON kapok_orders (buyer_org, placed_at)""",
    """CREATE INDEX IF NOT EXISTS kapok_orders_state ON kapok_orders (state, placed_at)""",
]

_STATE_OF = {
    Order.Reserved: "reserved", Order.Paid: "paid", Order.Fulfilled: "fulfilled",
    Order.Expired: "expired", Order.Cancelled: "cancelled", Order.Refunded: "refunded",
}
UPDATE = ("UPDATE kapok_orders SET state = :state, updated_at = :at{extra} "
          "WHERE aggregate_id = :id")


class MarketView(ProceedsView):
    tables = ProceedsView.tables + ORDER_TABLES

    def _translate(self, event, position: int, deltas: dict, accounts: dict):
        if isinstance(event, Order.Placed):
            return [(
                "INSERT INTO kapok_orders VALUES (:id, :order_id, :org, :account, :listing, "
                ":project, :vintage, :tonnes, :total, :currency, :retire, 'draft', :at, :at, "
                "NULL, NULL, NULL)",
                {"id": str(event.originator_id), "order_id": event.order_id,
                 "org": event.buyer_org, "account": event.buyer_account,
                 "listing": event.listing_id, "project": event.project,
                 "vintage": event.vintage, "tonnes": event.tonnes, "total": event.total_minor,
                 "currency": event.currency, "retire": int(event.retirement is not None),
                 "at": event.timestamp.isoformat()},
            )]
        params = {"id": str(event.originator_id), "at": event.timestamp.isoformat()}
        if isinstance(event, Order.PaymentAttached):
            return [("UPDATE kapok_orders SET payment_id = :payment, updated_at = :at "
                     "WHERE aggregate_id = :id", {**params, "payment": event.payment_id})]
        state = _STATE_OF.get(type(event))
        if state is None:
            return super()._translate(event, position, deltas, accounts)
        extra = ""
        if isinstance(event, Order.Reserved):
            extra, params["until"] = ", reserved_until = :until", event.until.isoformat()
        elif isinstance(event, Order.Fulfilled):
            extra, params["ref"] = ", delivery_reference = :ref", event.delivery_reference
        return [(UPDATE.format(extra=extra), {**params, "state": state})]

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

    def order_states(self) -> dict[str, int]:
        rows = self.recorder.query(
            "SELECT state, COUNT(*) AS n FROM kapok_orders GROUP BY state", {})
        return {row["state"]: row["n"] for row in rows}


def _order_row(row: Any) -> dict:
    data = dict(row)
    data["retire"] = bool(data["retire"])
    return data
