"""Which payment provider Kapok uses: Stripe when keys are configured, else offline tests."""

from __future__ import annotations

import os

from ledger.settings import local_secret
from market.payments import OfflinePaymentProvider, PaymentProvider

OFFLINE_SECRET_FILE = "var/offline-webhook-secret"


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
    from market.stripe_payments import StripePaymentProvider

    return StripePaymentProvider(key, environ.get("KAPOK_STRIPE_WEBHOOK_SECRET", ""),
                                 environ.get("KAPOK_STRIPE_API_BASE") or None)
