"""Reservations as buyers and operators meet them: what one organisation may hold reserved,
the refusal beyond it on the buyer's page and in the API, and the operators' page that lists
and releases reservations."""

from __future__ import annotations

import re

from market.listings import listing_id_for
from tests.web.conftest import ORG_A, csrf_token, post_form
from tests.web.test_api import as_role, assert_error, place_order  # noqa: F401 (a fixture)
from tests.web.test_buyer import order_form

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
