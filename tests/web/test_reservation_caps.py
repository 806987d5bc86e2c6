"""Reservations as buyers and operators meet them: what one organisation may hold reserved,
the refusal beyond it on the buyer's page and in the API, and the operators' page that lists
and releases reservations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from market.domain.listings import listing_id_for
from tests.conftest import settled
from tests.web.api_calls import assert_error, place_order
from tests.web.buyer_forms import order_form
from tests.web.conftest import ORG_A, csrf_token, post_form
from web import create_app

KAP_AF = str(listing_id_for("demo:listing:KAP-AF-01:2023"))
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def available(market, listing_id: str = KAP_AF) -> int:
    return market.get_listing(listing_id).available


def test_one_organisation_cannot_hold_a_listings_whole_stock_with_two_api_calls(
        market, as_role):
    # A free sign-up asks for half of what is left, then for the rest.
    left = available(market)
    buyer = as_role("buyer")
    first = place_order(buyer, KAP_AF, left // 2)
    second = place_order(buyer, KAP_AF, left - left // 2)
    # At most the cap is held; the rest stays on offer for everyone else.
    assert first.status_code == 409 or second.status_code == 409
    assert available(market) >= left - market.reservation_caps().per_listing


def test_the_api_refuses_an_order_over_the_cap_with_409_saying_the_cap_and_what_is_held(
        market, as_role):
    market.set_reservation_caps(per_listing=30, per_organisation=50)
    buyer = as_role("buyer")
    assert place_order(buyer, KAP_AF, 20).status_code == 201

    body = assert_error(place_order(buyer, KAP_AF, 15), 409)

    assert "at most 30 t reserved on listing KAP-AF-01 2023" in body["message"]
    assert "already holds 20 t" in body["message"] and "order at most 10 t" in body["message"]
    assert not _UUID.search(body["message"])


def test_the_buyers_order_form_shows_the_cap_when_it_refuses(buyer, market):
    market.set_reservation_caps(per_listing=5, per_organisation=50)
    response = post_form(buyer, "/my/orders", order_form(market, tonnes="7"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "at most 5 t reserved on listing VCS-1067 2021" in page
    assert "already holds 0 t" in page and not _UUID.search(page.split("<main", 1)[-1])


def test_operators_set_the_caps_in_the_console_and_orders_follow_them(operator, market):
    page = operator.get("/console/reservations").get_data(as_text=True)
    assert 'name="per_listing"' in page and 'value="1000"' in page

    response = post_form(operator, "/console/reservations/caps",
                         {"per_listing": "40", "per_organisation": "60"})
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    response = post_form(operator, f"/console/listings/{KAP_AF}/reservation-cap", {"cap": "8"})
    assert response.status_code == 302, response.get_data(as_text=True)[:800]

    caps = market.reservation_caps(KAP_AF)
    assert (caps.per_listing, caps.per_organisation) == (8, 60)
    assert market.reservation_caps().per_listing == 40
    assert 'value="8"' in operator.get("/console/listings").get_data(as_text=True)


@pytest.mark.parametrize("form", [{"per_listing": "0", "per_organisation": "10"},
                                  {"per_listing": "10", "per_organisation": "1.5"},
                                  {"per_listing": "", "per_organisation": "10"}])
def test_a_cap_that_is_not_whole_tonnes_from_one_is_refused_and_changes_nothing(
        operator, market, form):
    response = post_form(operator, "/console/reservations/caps", form)
    assert response.status_code == 400
    assert market.reservation_caps().per_listing == 1_000


def test_operators_see_reservations_and_release_one_after_confirming(operator, market):
    placed = market.place_order(KAP_AF, 25, ORG_A, f"org-{ORG_A}")
    order_id, before = placed["order_id"], available(settled(market))

    # The list shows who holds what, on which listing, until when.
    page = operator.get("/console/reservations").get_data(as_text=True)
    row = page[page.index(order_id):].split("</tr>", 1)[0]
    assert ORG_A in row and "KAP-AF-01 · 2023" in row and ">25<" in row
    assert placed["reserved_until"][:16].replace("T", " ") in row
    # Release asks first; confirming cancels the order and puts the tonnes back on offer.
    confirm = operator.get(f"/console/orders/{order_id}/release").get_data(as_text=True)
    assert "Release 25 t" in confirm
    response = post_form(operator, f"/console/orders/{order_id}/release",
                         {"note": "held without paying"})
    assert response.status_code == 302, response.get_data(as_text=True)[:800]

    order = market.get_order(order_id)
    assert order.state == "cancelled" and "held without paying" in order.note
    assert market.ledger.get_account(order.escrow_name).blocks == []
    assert available(market) == before + 25
    listed = operator.get("/console/reservations").get_data(as_text=True)
    assert f"/console/orders/{order_id}/release" not in listed
    # Releasing it again is refused, with the reason, and changes nothing.
    again = post_form(operator, f"/console/orders/{order_id}/release", {})
    assert again.status_code == 409 and "holds no reservation" in again.get_data(as_text=True)


def test_buyers_cannot_release_or_change_caps(buyer, market):
    order_id = market.place_order(KAP_AF, 2, ORG_A, f"org-{ORG_A}")["order_id"]
    for path in (f"/console/orders/{order_id}/release", "/console/reservations/caps"):
        response = buyer.post(path, data={"csrf_token": csrf_token(buyer)})
        assert response.status_code in (302, 403)
    assert market.get_order(order_id).state == "reserved"


def test_the_reservation_lifetime_is_set_by_the_environment(store_url, monkeypatch):
    monkeypatch.setenv("KAPOK_RESERVATION_MINUTES", "5")
    app = create_app({"TESTING": True, "DATABASE_URL": store_url, "SECRET_KEY": "test"})
    market = app.extensions["kapok_market"]
    try:
        before = market.now()
        placed = market.place_order(KAP_AF, 2, ORG_A, f"org-{ORG_A}")
        until = datetime.fromisoformat(placed["reserved_until"])
        assert before + timedelta(minutes=5) <= until <= market.now() + timedelta(minutes=5)
    finally:
        market.close()
        app.extensions["kapok_identity"].close()
