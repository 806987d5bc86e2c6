"""Which payment provider Kapok uses: Stripe when keys are configured, else offline tests."""

from __future__ import annotations

import os

from market.payments import OfflinePaymentProvider, PaymentProvider


def payment_provider(environ=None) -> PaymentProvider:
    """``KAPOK_STRIPE_SECRET_KEY`` and ``KAPOK_STRIPE_WEBHOOK_SECRET`` select Stripe (with
    ``KAPOK_STRIPE_API_BASE`` to point at a local fake such as localstripe); without them,
    the offline provider takes clearly labelled test payments (the embedded demo)."""
    environ = os.environ if environ is None else environ
    key = environ.get("KAPOK_STRIPE_SECRET_KEY")
    if not key:
        return OfflinePaymentProvider(environ.get("KAPOK_OFFLINE_WEBHOOK_SECRET", "offline-demo-secret"))
    from market.stripe_payments import StripePaymentProvider

    return StripePaymentProvider(key, environ.get("KAPOK_STRIPE_WEBHOOK_SECRET", ""),
                                 environ.get("KAPOK_STRIPE_API_BASE") or None)
