"""Payment provider webhooks: verified on the raw body, acted on once, never a 500."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from market.domain.payments import InvalidWebhookError

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/payments")
def payments():
    """Stripe (or the offline demo provider) reports a payment event."""
    market = current_app.extensions["kapok_market"]
    try:
        event = market.payments.parse_webhook(request.get_data(),
                                              request.headers.get("Stripe-Signature"))
    except InvalidWebhookError as error:
        return jsonify(code=400, status="Bad Request", message=str(error)), 400
    if event is None:
        return jsonify(received=True, outcome="ignored"), 200
    outcome = market.handle_payment_event(event)
    return jsonify(received=True, outcome=outcome), 200
