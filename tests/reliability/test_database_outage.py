"""The database goes away under load: requests fail with a clear 503 (never a 500, never a
half-written order), and Kapok recovers by itself when the database is back."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.postgres


@pytest.fixture
def outage(proxied):
    app, proxy, token, _ = proxied
    return app, proxy, token


def first_listing(client) -> str:
    return client.get("/api/v1/listings").get_json()["items"][0]["listing_id"]


def order_count(app) -> int:
    rows, total = app.extensions["kapok_market"].caught_up_view().orders()
    return total


def test_requests_get_a_503_while_the_database_is_away_and_work_again_after(outage):
    app, proxy, token = outage
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    listing = first_listing(client)
    assert client.get("/catalogue").status_code == 200
    before = order_count(app)

    proxy.cut()
    time.sleep(1.1)  # past the gate's freshness: from now on requests are answered at once
    for path in ("/catalogue", "/api/v1/listings", "/registry"):
        started = time.monotonic()
        response = client.get(path)
        assert response.status_code == 503, (path, response.get_data(as_text=True)[:300])
        assert time.monotonic() - started < 3, "a request hung on the lost database"
    page = client.get("/catalogue")
    assert "database is unavailable" in page.get_data(as_text=True)
    api = client.get("/api/v1/listings")
    assert api.get_json()["code"] == 503 and api.headers["Retry-After"]
    refused = client.post("/api/v1/orders", json={"listing_id": listing, "tonnes": 5},
                          headers=auth)
    assert refused.status_code == 503

    proxy.restore()
    deadline = time.monotonic() + 20
    while client.get("/catalogue").status_code != 200:
        assert time.monotonic() < deadline, "Kapok did not recover after the database came back"
        time.sleep(0.2)
    # Nothing half-written: the refused order does not exist, and a new one works end to end.
    assert order_count(app) == before
    placed = client.post("/api/v1/orders", json={"listing_id": listing, "tonnes": 5},
                         headers=auth)
    assert placed.status_code in (200, 201), placed.get_json()
    paid = client.post(f"/api/v1/orders/{placed.get_json()['order_id']}/pay", headers=auth)
    assert paid.get_json()["state"] == "fulfilled"


def test_orders_under_load_while_the_database_flaps_end_whole_or_not_at_all(outage):
    app, proxy, token = outage
    listing = first_listing(app.test_client())
    statuses: list[int] = []
    placed: list[str] = []

    def buyer():
        client = app.test_client()
        for _ in range(6):
            response = client.post("/api/v1/orders", json={"listing_id": listing, "tonnes": 1},
                                   headers={"Authorization": f"Bearer {token}"})
            statuses.append(response.status_code)
            if response.status_code in (200, 201):
                placed.append(response.get_json()["order_id"])

    threads = [threading.Thread(target=buyer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    proxy.cut()
    time.sleep(1.0)
    proxy.restore()
    for thread in threads:
        thread.join(60)

    assert 500 not in statuses and set(statuses) <= {200, 201, 503}, statuses
    market = app.extensions["kapok_market"]
    deadline = time.monotonic() + 20
    while True:
        try:
            view = market.caught_up_view()
            break
        except Exception:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # Every order that answered 201 exists, reserved whole; any order that exists is whole
    # (its tonnes in escrow) whatever its caller heard.
    rows, _ = view.orders(limit=1000)
    existing = {row["order_id"] for row in rows}
    assert set(placed) <= existing
    for order_id in existing:
        order = market.get_order(order_id)
        escrow = market.ledger.get_account(order.escrow_name) if order.state == "reserved" else None
        if escrow is not None:
            assert escrow.balance == order.tonnes
    from ledger.audit.invariants import validate
    from ledger.read.replay import replay

    assert validate(replay(market)) == []
