"""Kapok's web app: the Flask app factory (issue 5 builds the storefront, console and API)."""

from __future__ import annotations

import os

from flask import Flask, render_template

from ledger.settings import database_url
from market.application import Marketplace
from market.settings import payment_provider


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("KAPOK_SECRET_KEY"),
        DATABASE_URL=database_url(),
    )
    if test_config:
        app.config.update(test_config)
    ledger = Marketplace(database=app.config["DATABASE_URL"],
                         payments=app.config.get("PAYMENT_PROVIDER") or payment_provider())
    app.extensions["kapok_ledger"] = app.extensions["kapok_market"] = ledger

    from web import transparency, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(transparency.bp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "position": ledger.recorder.max_notification_id() or 0}

    @app.get("/")
    def index():
        view = ledger.caught_up_view()
        return render_template(
            "index.html", projects=view.projects(), balances=view.balances(),
            issuances=view.issuances(),
        )

    return app
