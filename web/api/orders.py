"""Orders: a buyer's token buys for its organisation; operators see every order."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from market.domain.money import Money
from market.domain.orders import IllegalTransitionError, UnknownOrderError
from web.api.access import is_operator, own_organisation, token_required
from web.api.pagination import ApiBlueprint, page_of
from web.api.schemas import (CardPaymentSchema, OrderCreateSchema, OrderFilterSchema,
                              OrderProceedsSchema, OrderSchema, claim_of)
from web.api.services import market
from web.consistency import read_view
from identity.domain import holding_account

bp = ApiBlueprint("orders", __name__, url_prefix="/api/v1/orders",
                  description="Buying credits: reserve, pay, receive (or retire at once).")


def visible_order(order_id: str, as_last_seen: bool = False):
    """The order if the caller may see it; another organisation's is as unknown as a
    missing one (404), so ids cannot be probed. ``as_last_seen``: as this process last saw
    it, for a caller that only needs what never changes (its buyer) and reads it afresh."""
    order = (market().peek_order if as_last_seen else market().get_order)(order_id)
    if not is_operator() and order.buyer_org != own_organisation():
        raise UnknownOrderError(f"unknown order {order_id}")
    return order


@bp.route("")
class Orders(MethodView):
    @token_required(bp, "buyer", "operator")
    @bp.arguments(OrderFilterSchema, location="query")
    @bp.response(200, page_of(OrderSchema))
    @bp.paginate()
    def get(self, filters, pagination_parameters):
        """Your organisation's orders, newest first (operators: every organisation's)."""
        page = pagination_parameters
        rows, total = read_view().orders(
            buyer_org=None if is_operator() else own_organisation(), state=filters.get("state"),
            limit=page.page_size, offset=page.first_item)
        page.item_count = total
        return rows  # the order book's rows hold what OrderSchema shows: no order is loaded

    @token_required(bp, "buyer")
    @bp.arguments(OrderCreateSchema)
    @bp.response(201, OrderSchema)
    @bp.refuses(400, 404, 409)
    def post(self, order):
        """Reserves tonnes of a listing for your organisation, at the quoted price, until
        ``reserved_until``; pay to receive them (or have them retired, with ``retire``)."""
        organisation = own_organisation()
        key = order.get("idempotency_key")
        claim = order.get("retire")
        return market().place_order(
            str(order["listing_id"]), order["tonnes"], organisation,
            holding_account(organisation), retirement=claim_of(claim) if claim else None,
            # Scoped to the organisation: another's key can never replay this order.
            idempotency_key=f"api:order:{organisation}:{key}" if key else None)


@bp.route("/<order_id>")
class OrderById(MethodView):
    @token_required(bp, "buyer", "operator")
    @bp.response(200, OrderSchema)
    @bp.refuses(404)
    def get(self, order_id: str):
        """One of your organisation's orders."""
        return market().order_summary(visible_order(order_id))


@bp.route("/<order_id>/pay")
class OrderPayment(MethodView):
    @token_required(bp, "buyer")
    @bp.response(200, OrderSchema)
    @bp.refuses(404, 409)
    def post(self, order_id: str):
        """Pays a reserved order with the demo's offline test provider (no real money):
        the order is fulfilled at once. With Stripe, pay by card: ``/payment``, or the site."""
        order = visible_order(order_id, as_last_seen=True)  # the payment reads it afresh
        return market().pay_offline_summary(order.order_id, order)


@bp.route("/<order_id>/payment")
class OrderCardPayment(MethodView):
    @token_required(bp, "buyer")
    @bp.response(200, CardPaymentSchema)
    @bp.refuses(404, 409)
    def post(self, order_id: str):
        """Starts paying a reserved order by card with the site's provider (Stripe): the
        payment's ``client_secret`` and the ``publishable_key`` for Stripe.js on your side
        (``stripe.confirmCardPayment``); the card never reaches Kapok. Calling it again
        returns the same payment. The order is fulfilled when Stripe confirms the payment.
        With the demo's offline provider, use ``/pay`` instead (409 here)."""
        order = visible_order(order_id)
        if not market().payments.takes_card_details:
            raise IllegalTransitionError(
                f"payments here go through the {market().payments.name} provider, which "
                f"takes no card details: POST /api/v1/orders/{order.order_id}/pay")
        started = market().start_payment(order.order_id)
        return {**started, "publishable_key":
                current_app.config.get("STRIPE_PUBLISHABLE_KEY") or None}


@bp.route("/<order_id>/proceeds")
class OrderProceeds(MethodView):
    @token_required(bp, "buyer", "operator")
    @bp.response(200, OrderProceedsSchema)
    @bp.refuses(404)
    def get(self, order_id: str):
        """Where the order's money went: its share for each recipient of the project's
        benefit-sharing rule, and for each farm, as booked when the payment settled."""
        order = visible_order(order_id)
        sale = market().booked_sale(order)
        if sale is None:
            raise UnknownOrderError(f"order {order.order_id} is {order.state}: its proceeds "
                                    "are booked when its payment settles")
        return {"order_id": order.order_id, "project": order.project,
                "currency": order.currency, "total_minor": order.total_minor,
                "booked_on": sale.entry.on.isoformat(),
                "refunded_on": sale.refunded_on.isoformat() if sale.refunded_on else None,
                "allocations": [
                    {"recipient": allocation.recipient, "farm_code": allocation.farm_code,
                     "amount_minor": allocation.minor,
                     "amount": Money.from_minor(allocation.minor, order.currency).amount}
                    for allocation in sale.allocations()]}
