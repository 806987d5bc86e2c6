"""Kapok's web app: the Flask app factory.

One blueprint per audience: ``storefront`` (the public and buyers), ``buyer`` (a company's
portfolio, orders, certificates), ``console`` (Ecosphere+ operators), ``auditor`` (read-only
audit area), ``api`` (JSON, ``/api/v1``), plus ``auth``, the payment webhook and the public
transparency files. Configuration comes from Kapok's settings (``ledger/settings.py``: ``KAPOK_*``
environment variables), overridden by ``test_config``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from ledger import settings
from market.application import Marketplace
from market.settings import payment_provider
from web.dbgate import gate_for
from identity.application import Identity

csrf = CSRFProtect()


class ConfigurationError(RuntimeError):
    pass


def _config_from_settings() -> dict:
    """Flask's configuration from Kapok's settings (``ledger/settings.py``), each checked."""
    return {
        "SECRET_KEY": settings.KAPOK_SECRET_KEY.read(),
        "DATABASE_URL": settings.database_url(),
        "KAPOK_ENV": settings.KAPOK_ENV.read(),
        "LOGIN_ATTEMPTS_PER_MINUTE": settings.KAPOK_LOGIN_ATTEMPTS_PER_MINUTE.read(),
        "ADDRESS_ATTEMPTS_PER_MINUTE": settings.KAPOK_ADDRESS_ATTEMPTS_PER_MINUTE.read(),
        "CARD_ATTEMPTS_PER_HOUR": settings.KAPOK_CARD_ATTEMPTS_PER_HOUR.read(),
        "RATELIMIT_STORAGE_URI": settings.KAPOK_RATELIMIT_STORAGE_URI.read(),
        "RATELIMIT_KEY_PREFIX": settings.KAPOK_RATELIMIT_KEY_PREFIX.read(),
        # Proxies in front of Kapok that set X-Forwarded-For: limits per address need the
        # client's address, not the proxy's.
        "PROXIES": settings.KAPOK_PROXIES.read(),
        "RESERVATION_MINUTES": settings.KAPOK_RESERVATION_MINUTES.read(),
        "PUBLIC_URL": settings.KAPOK_PUBLIC_URL.read(),
        # With Stripe: the card form on the order page (Stripe.js, from Stripe or a fake).
        "STRIPE_PUBLISHABLE_KEY": settings.KAPOK_STRIPE_PUBLISHABLE_KEY.read(),
        "STRIPE_JS_URL": settings.KAPOK_STRIPE_JS_URL.read(),
        # How long a request waits for the worker's read model to show its own write.
        "VIEW_WAIT_SECONDS": settings.KAPOK_VIEW_WAIT_SECONDS.read(),
        # Whose cosignatures of the audit log's checkpoints are accepted and served.
        "WITNESS_KEYS": settings.KAPOK_WITNESS_KEYS.read(),
    }


def _database_bounds() -> dict[str, str]:
    """How long a web request may wait on PostgreSQL (``ledger/adapters/pg_store.py``): short, so that
    a database that is away, hung or saturated gives a 503 in seconds, never a hung thread.
    eventsourcing tries a read several times, each waiting up to the pool timeout for a
    connection; a statement runs at most the statement timeout, and the client waits a little
    longer for its answer before giving up on the connection."""
    return settings.database_bounds({
        settings.POSTGRES_CONNECT_TIMEOUT: 1, settings.POSTGRES_POOL_TIMEOUT: 0.5,
        settings.POSTGRES_STATEMENT_TIMEOUT: 5, settings.POSTGRES_LOCK_TIMEOUT: 5})


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(_config_from_settings())
    if test_config:
        app.config.update(test_config)
    production = app.config["KAPOK_ENV"] == "production" and not app.testing
    if not app.config.get("SECRET_KEY"):
        if production:
            raise ConfigurationError(
                "KAPOK_SECRET_KEY is not set: it signs sessions and must be a long random "
                "secret in production (set KAPOK_ENV=development to run locally without one)")
        app.config["SECRET_KEY"] = os.urandom(32)
    if production and not app.config.get("RATELIMIT_STORAGE_URI"):
        raise ConfigurationError(
            "KAPOK_RATELIMIT_STORAGE_URI is not set: in production several processes serve, "
            "and log-in and card limits must be counted in one store they all share "
            "(redis://host:6379); memory:// counts in each process apart, for one alone")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the session's own lifetime bounds the token's
        API_TITLE="Kapok API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
    )
    app.config.setdefault("KAPOK_PRODUCTION", production)

    bounds = _database_bounds()
    payments = app.config.get("PAYMENT_PROVIDER") or payment_provider()
    if production and (problem := payments.unfit_for_production()):
        # Test payments in production would let anyone who can sign them settle or
        # reverse real orders.
        raise ConfigurationError(f"no real payment provider in production: {problem}")
    market = Marketplace(env=bounds, database=app.config["DATABASE_URL"],
                         payments=payments,
                         reservation_minutes=app.config["RESERVATION_MINUTES"])
    app.extensions["kapok_market"], app.extensions["kapok_ledger"] = market, market.ledger
    market.view  # its tables made once, before requests share it
    app.extensions["kapok_identity"] = Identity(app.config["DATABASE_URL"], env=bounds)
    app.extensions["kapok_db_gate"] = gate_for(market)
    if app.config["PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXIES"])

    from web import (api, auditor, auth, buyer, consistency, console, errors, input_bounds,
                     ratelimit, security, storefront, transparency, webhooks)

    ratelimit.init_app(app)
    csrf.init_app(app)
    app.session_interface = auth.CookieSessions()
    auth.login_manager.init_app(app)
    security.register(app)
    input_bounds.register(app)  # before the database is asked: hostile input needs no store
    errors.register(app)
    consistency.register(app)
    for blueprint in (auth.bp, storefront.bp, buyer.bp, console.bp, auditor.bp,
                      transparency.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(webhooks.bp)  # signed by the provider instead
    csrf.exempt(transparency.add_cosignatures)  # signed by the witness instead
    api.register(app, csrf)

    @app.get("/favicon.ico")
    def favicon():
        # Browsers ask for it on every non-HTML page (a proof's JSON, the public key).
        return app.send_static_file("kapok.svg")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "position": market.recorder.max_notification_id() or 0}

    return app
