"""The API's documentation page: Swagger UI served from the app itself (no CDN), started by
a script file rather than an inline one, so the site's CSP holds on this page too."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("api_docs_ui", __name__, url_prefix="/api/v1/docs")
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")


@bp.get("")
def page():
    return render_template("api/docs.html")


@bp.get("/assets/<name>")
def asset(name: str):
    """One of Swagger UI's own files (only those the page uses)."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), name, max_age=86400)
