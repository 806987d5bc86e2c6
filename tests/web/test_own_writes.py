"""A request sees its own writes although only the worker writes the read model: it waits
for the worker's projection, and answers 503 with Retry-After when the worker is not there
within the bound, keeping the write."""

from __future__ import annotations

import pytest

from tests.conftest import settled, view_worker
from tests.web.conftest import LOGINS, _client_for, served
from tests.web.test_buyer import first_listing, place


@pytest.fixture
def unprojected(store_url, tmp_path, monkeypatch):
    """The demo app with no worker running beside it (yet), waiting a tenth of a second."""
    for app in served(store_url, tmp_path, monkeypatch, worker=False):
        app.config["VIEW_WAIT_SECONDS"] = 0.1
        yield app


def test_an_api_order_waits_for_the_view_and_lists_at_once(app, api_token):
    token = {"Authorization": f"Bearer {api_token('buyer')}"}
    client = app.test_client()
    listing = str(first_listing(app.extensions["kapok_market"]).id)

    placed = client.post("/api/v1/orders", json={"listing_id": listing, "tonnes": 2},
                         headers=token).get_json()
    listed = client.get("/api/v1/orders?page_size=100", headers=token).get_json()

    assert placed["order_id"] in {item["order_id"] for item in listed["items"]}


def test_without_the_worker_an_api_write_is_kept_and_answered_503_with_retry_after(
        unprojected):
    market = unprojected.extensions["kapok_market"]
    identity = unprojected.extensions["kapok_identity"]
    token = {"Authorization": f"Bearer {identity.issue_token(LOGINS['buyer'][0], 'tests')}"}
    client = unprojected.test_client()
    body = {"listing_id": str(first_listing(market).id), "tonnes": 2, "idempotency_key": "k1"}

    response = client.post("/api/v1/orders", json=body, headers=token)

    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert "recorded" in response.get_json()["message"]
    with view_worker(market):  # the worker comes back: the same request gives the order
        again = client.post("/api/v1/orders", json=body, headers=token)
        assert again.status_code == 201
        settled(market)
        rows, total = market.view.orders(buyer_org="andes-coffee-roasters", state="reserved")
        assert [row["order_id"] for row in rows] == [again.get_json()["order_id"]]


def test_without_the_worker_the_page_after_a_form_answers_503_until_it_catches_up(
        unprojected):
    market = unprojected.extensions["kapok_market"]
    buyer = _client_for(unprojected, "buyer")

    order_id = place(buyer, market)  # the form's POST redirects at once
    waiting = buyer.get("/my/orders")

    assert waiting.status_code == 503 and waiting.headers["Retry-After"] == "2"
    assert market.get_order(order_id).state == "reserved"  # the write is kept
    with view_worker(market):
        settled(market)
        assert order_id in buyer.get("/my/orders").get_data(as_text=True)
