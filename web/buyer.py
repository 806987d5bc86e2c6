"""A buyer organisation's own pages: portfolio, orders, checkout, retirements, certificates."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.auth import require

bp = Blueprint("buyer", __name__, url_prefix="/my")


@bp.get("/portfolio")
@require("buyer")
def portfolio():
    return render_template("storefront/home.html")


@bp.get("/orders")
@require("buyer")
def orders():
    return render_template("storefront/home.html")
