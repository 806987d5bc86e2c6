"""Lists of orders (the API's, the buyer's page, the console's) come from the market's order
book alone: each item as the order itself shows it, and no order loaded per row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import settled
from testbed.builders import claim
from tests.web.conftest import ORG_A


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def listing_of(anonymous, project: str = "KAP-AF-01") -> str:
    return anonymous.get(f"/api/v1/listings?project={project}").get_json()["items"][0][
        "listing_id"]


def order_for_org_a(market, listing_id: str, tonnes: int = 2, **options) -> str:
    return market.place_order(listing_id, tonnes, ORG_A, f"org-{ORG_A}", **options)["order_id"]


def test_each_order_in_the_api_list_is_exactly_the_order_on_its_own(
        anonymous, api_token, market, monkeypatch):
    listing_id = listing_of(anonymous)
    # One order of org A in each state an order can end a day in.
    reserved = order_for_org_a(market, listing_id)
    fulfilled = order_for_org_a(market, listing_id)
    market.pay_offline(fulfilled)
    retired = order_for_org_a(market, listing_id, retirement=claim("Andes Coffee Roasters"))
    market.pay_offline(retired)
    cancelled = order_for_org_a(market, listing_id)
    market.cancel_order(cancelled, "the buyer changed its mind")
    refunded = order_for_org_a(market, listing_id)
    market.pay_offline(refunded)
    market.refund_order(refunded, "bought twice")
    expired = order_for_org_a(market, listing_id)
    later = market.now() + timedelta(days=1)
    monkeypatch.setattr(market, "now", lambda: later)
    assert market.expire_order(expired)
    states = {reserved: "reserved", fulfilled: "fulfilled", retired: "fulfilled",
              cancelled: "cancelled", refunded: "refunded", expired: "expired"}
    settled(market)

    for role in ("buyer", "operator"):
        headers = bearer(api_token(role))
        listed = anonymous.get("/api/v1/orders?page_size=100", headers=headers).get_json()
        items = {item["order_id"]: item for item in listed["items"]}
        assert {order_id: items[order_id]["state"] for order_id in states} == states
        assert items[retired]["retire"] is True and items[retired]["delivery_reference"]
        assert items[reserved]["serials"] and items[cancelled]["serials"] == []
        for order_id, item in items.items():  # the demo's own orders too
            alone = anonymous.get(f"/api/v1/orders/{order_id}", headers=headers)
            assert item == alone.get_json(), order_id


@pytest.mark.parametrize("who, path", [
    ("token", "/api/v1/orders?page_size=20"),
    ("buyer", "/my/orders"),
    ("operator", "/console/orders"),
])
def test_a_page_of_orders_loads_no_order_aggregate(
        request, anonymous, api_token, market, monkeypatch, who, path):
    listing_id = listing_of(anonymous)
    placed = [order_for_org_a(market, listing_id) for _ in range(20)]
    settled(market)
    client = anonymous if who == "token" else request.getfixturevalue(who)
    headers = bearer(api_token("buyer")) if who == "token" else {}
    loaded = []
    get = market.store.repository.get
    monkeypatch.setattr(market.store.repository, "get",
                        lambda aggregate_id, *args, **kwargs: loaded.append(aggregate_id)
                        or get(aggregate_id, *args, **kwargs))

    response = client.get(path, headers=headers)

    assert response.status_code == 200
    assert all(order_id in response.get_data(as_text=True) for order_id in placed)
    assert loaded == []
