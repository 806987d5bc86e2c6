"""The public site and the buyers' shop: the Tambopata story, projects, catalogue, quotes,
the public retirement registry and the transparency page."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("storefront", __name__)


@bp.get("/")
def home():
    return render_template("storefront/home.html")


@bp.get("/projects")
def projects():
    return render_template("storefront/home.html")


@bp.get("/catalogue")
def catalogue():
    return render_template("storefront/home.html")


@bp.get("/registry")
def registry():
    return render_template("storefront/home.html")


@bp.get("/transparency")
def transparency():
    return render_template("storefront/home.html")
