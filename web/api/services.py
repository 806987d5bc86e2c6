"""The services the API's views call, as the app factory set them up."""

from __future__ import annotations

from flask import current_app

from market.application import Marketplace


def market() -> Marketplace:
    return current_app.extensions["kapok_market"]
