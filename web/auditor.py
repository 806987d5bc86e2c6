"""The auditors' area (read-only): events, balances at a moment, tree heads, verify, exports."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.auth import require

bp = Blueprint("auditor", __name__, url_prefix="/auditor")


@bp.get("/")
@require("auditor")
def home():
    return render_template("storefront/home.html")
