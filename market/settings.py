"""The market's settings from the environment: the payment provider (Stripe when keys are
configured, else offline tests) and how long a reservation lasts."""

from __future__ import annotations

import os

from ledger.domain.errors import InvalidInputError
from ledger.settings import local_secret
from market.domain.errors import MarketError
from market.domain.payments import OfflinePaymentProvider, PaymentProvider

OFFLINE_SECRET_FILE = "var/offline-webhook-secret"
RESERVATION_MINUTES = 30
MAX_RESERVATION_MINUTES = 24 * 60


class InvalidSettingError(MarketError, InvalidInputError):
    """An environment variable whose value the market cannot use."""


def reservation_minutes(environ=None) -> int:
    """``KAPOK_RESERVATION_MINUTES``: how long a new order holds its tonnes before it expires,
    long enough to pay by card (with 3-D Secure), short enough that unpaid orders do not keep
    stock off the market. Raises InvalidSettingError unless a whole number from 1 to 1,440."""
    environ = os.environ if environ is None else environ
    text = environ.get("KAPOK_RESERVATION_MINUTES", "").strip()
    if not text:
        return RESERVATION_MINUTES
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_RESERVATION_MINUTES:
        raise InvalidSettingError(
            f"KAPOK_RESERVATION_MINUTES must be whole minutes from 1 to "
            f"{MAX_RESERVATION_MINUTES:,}, not {text[:20]!r}")
    return int(text)


def payment_provider(environ=None) -> PaymentProvider:
    """``KAPOK_STRIPE_SECRET_KEY`` and ``KAPOK_STRIPE_WEBHOOK_SECRET`` select Stripe (with
    ``KAPOK_STRIPE_API_BASE`` to point at a local fake such as localstripe); without them,
    the offline provider takes clearly labelled test payments (the embedded demo), its
    webhooks signed with ``KAPOK_OFFLINE_WEBHOOK_SECRET`` or else a random secret of this
    installation, kept in ``KAPOK_OFFLINE_WEBHOOK_SECRET_FILE`` (made on first use)."""
    environ = os.environ if environ is None else environ
    key = environ.get("KAPOK_STRIPE_SECRET_KEY")
    if not key:
        secret = environ.get("KAPOK_OFFLINE_WEBHOOK_SECRET") or local_secret(
            environ.get("KAPOK_OFFLINE_WEBHOOK_SECRET_FILE") or OFFLINE_SECRET_FILE)
        return OfflinePaymentProvider(secret)
    from market.adapters.stripe_payments import StripePaymentProvider

    return StripePaymentProvider(key, environ.get("KAPOK_STRIPE_WEBHOOK_SECRET", ""),
                                 environ.get("KAPOK_STRIPE_API_BASE") or None)
