"""Ordering through the storefront's forms, as a browser does."""

from __future__ import annotations

import re
import secrets

from tests.web.conftest import post_form


def first_listing(market, project="VCS-1067", vintage=2021):
    return next(listing for listing in market.listings()
                if (listing.project_registry_id, listing.vintage_year) == (project, vintage))


def order_form(market, tonnes="7", **fields) -> dict:
    return {"listing_id": str(first_listing(market).id), "tonnes": tonnes,
            "nonce": secrets.token_urlsafe(16), **fields}


def place(client, market, **fields) -> str:
    """Orders through the form as a browser does; returns the new order's id."""
    response = post_form(client, "/my/orders", order_form(market, **fields))
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    match = re.fullmatch(r"/my/orders/(KAP-ORD-[0-9A-Z]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)

