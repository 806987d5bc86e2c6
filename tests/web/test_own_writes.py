"""A request sees its own writes although only the worker writes the read model: a list or
page waits for the worker's projection, and answers 503 with Retry-After when the worker is
not there within the bound; the write is kept."""

from __future__ import annotations

import pytest

from tests.conftest import settled, view_worker
from tests.web.buyer_forms import first_listing, place
from tests.web.conftest import LOGINS, _client_for, served


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


def test_without_the_worker_an_api_list_answers_503_with_retry_after_and_the_write_stays(
        unprojected):
    market = unprojected.extensions["kapok_market"]
    identity = unprojected.extensions["kapok_identity"]
    token = {"Authorization": f"Bearer {identity.issue_token(LOGINS['buyer'][0], 'tests')}"}
    client = unprojected.test_client()
    body = {"listing_id": str(first_listing(market).id), "tonnes": 2}

    placed = client.post("/api/v1/orders", json=body, headers=token)
    listed = client.get("/api/v1/orders", headers=token)

    assert placed.status_code == 201  # answered from the order itself
    assert listed.status_code == 503 and listed.headers["Retry-After"] == "2"
    assert "catching up" in listed.get_json()["message"]
    with view_worker(market):  # the worker comes back: the list shows the order
        listed = client.get("/api/v1/orders", headers=token).get_json()
        assert placed.get_json()["order_id"] in {item["order_id"] for item in listed["items"]}


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
