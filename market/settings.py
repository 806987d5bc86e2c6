"""The payment provider the settings choose: Stripe when its keys are configured, else the
offline provider's test payments."""

from __future__ import annotations

from typing import Mapping

from ledger.settings import (KAPOK_OFFLINE_WEBHOOK_SECRET, KAPOK_OFFLINE_WEBHOOK_SECRET_FILE,
                             KAPOK_STRIPE_API_BASE, KAPOK_STRIPE_SECRET_KEY,
                             KAPOK_STRIPE_WEBHOOK_SECRET, local_secret)
from market.domain.payments import OfflinePaymentProvider, PaymentProvider


def payment_provider(environ: Mapping[str, str] | None = None) -> PaymentProvider:
    """``KAPOK_STRIPE_SECRET_KEY`` and ``KAPOK_STRIPE_WEBHOOK_SECRET`` select Stripe (with
    ``KAPOK_STRIPE_API_BASE`` to point at a local fake such as localstripe); without them,
    the offline provider takes clearly labelled test payments (the embedded demo), its
    webhooks signed with ``KAPOK_OFFLINE_WEBHOOK_SECRET`` or else a random secret of this
    installation, kept in ``KAPOK_OFFLINE_WEBHOOK_SECRET_FILE`` (made on first use)."""
    key = KAPOK_STRIPE_SECRET_KEY.read(environ)
    if not key:
        secret = KAPOK_OFFLINE_WEBHOOK_SECRET.read(environ) or local_secret(
            KAPOK_OFFLINE_WEBHOOK_SECRET_FILE.read(environ))
        return OfflinePaymentProvider(secret)
    from market.adapters.stripe_payments import StripePaymentProvider

    return StripePaymentProvider(key, KAPOK_STRIPE_WEBHOOK_SECRET.read(environ),
                                 KAPOK_STRIPE_API_BASE.read(environ))
