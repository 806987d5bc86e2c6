"""The Ecosphere+ operators' console: projects, issuance, listings, orders, rules, payouts."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.auth import require

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.get("/")
@require("operator")
def home():
    return render_template("storefront/home.html")
