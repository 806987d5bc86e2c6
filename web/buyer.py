"""A buyer organisation's own pages: portfolio, orders, checkout, retirements, certificates
and API tokens. Every view reads or changes only ``current_user.organisation``'s things:
another organisation's order or retirement is a 404, as if it did not exist."""

from __future__ import annotations

import re
import secrets
from http import HTTPStatus

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, HiddenField, IntegerField, SelectField,
                     StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ledger.domain.accounts import ESCROW
from ledger.domain.quantities import MAX_QUANTITY
from ledger.domain.errors import UnknownAccountError, UnknownRetirementError
from ledger.read.holder_queries import retirements_of
from ledger.domain.retirements import CLAIM_TYPES, MAX_TEXT, RETIREMENT_REASONS, RetirementClaim
from ledger.domain.serials import SerialRange
from market.domain.money import Money
from market.domain.orders import RESERVED, TERMINAL, IllegalTransitionError
from market.domain.payments import OfflinePaymentProvider, PaymentError
from web.auth import identity, require
from web.consistency import read_view
from web.downloads import certificate_response
from web.errors import status_for
from web.ratelimit import (RateLimitExceeded, count_card_charge, count_card_setup,
                           count_token_issued)
from web.registry_reports import with_phases
from web.security import card_page_policy

bp = Blueprint("buyer", __name__, url_prefix="/my")
ORDERS_PER_PAGE = 20
ORDER_STATES = ("reserved", "paid", "fulfilled", "expired", "cancelled", "refunded")
_NONCE = r"^[A-Za-z0-9_-]{8,64}$"


def market():
    return current_app.extensions["kapok_market"]


@bp.app_template_global()
def order_nonce() -> str:
    """A fresh one-time key for an order form: the order it places is placed once, however
    often the form is submitted."""
    return secrets.token_urlsafe(16)


bp.add_app_template_global(RETIREMENT_REASONS, "retirement_reasons")


@bp.context_processor
def money_formatting():
    return {"money": lambda minor, currency: Money.from_minor(int(minor), currency).display()}


# --- forms ---------------------------------------------------------------------------------
class ClaimForm(FlaskForm):
    """On whose behalf and why credits are retired (the beneficiary becomes public)."""

    beneficiary = StringField("Beneficiary (public)", validators=[Length(max=MAX_TEXT)],
                              description="Shown on the public registry and the certificate.")
    reason = SelectField("Reason", choices=RETIREMENT_REASONS, default=RETIREMENT_REASONS[1])
    details = TextAreaField("Details", validators=[Length(max=MAX_TEXT)])
    period_start = DateField("Consumption period from", validators=[Optional()])
    period_end = DateField("to", validators=[Optional()])
    claim_type = SelectField("Claim", choices=CLAIM_TYPES, default=CLAIM_TYPES[0])

    def claim(self) -> RetirementClaim:
        return RetirementClaim(
            beneficiary=(self.beneficiary.data or "").strip(), reason=self.reason.data,
            details=(self.details.data or "").strip(), period_start=self.period_start.data,
            period_end=self.period_end.data, claim_type=self.claim_type.data)


class OrderForm(ClaimForm):
    listing_id = StringField("Listing", validators=[DataRequired(), Length(max=64)])
    tonnes = IntegerField("Tonnes", validators=[InputRequired(), NumberRange(1, MAX_QUANTITY)])
    nonce = HiddenField(validators=[Optional(), Regexp(_NONCE, message="malformed form nonce")])
    retire_now = BooleanField("Retire the credits at once, on behalf of:")


class RetireForm(ClaimForm):
    beneficiary = StringField("Beneficiary (public)",
                              validators=[DataRequired(), Length(max=MAX_TEXT)],
                              description="Shown on the public registry and the certificate.")
    quantity = IntegerField("Tonnes", validators=[Optional(), NumberRange(1, MAX_QUANTITY)])
    serials = StringField("or exactly these serials", validators=[Optional(), Length(max=120)],
                          description="FIRST-LAST, one serial number, a printed block serial "
                                      "or a Verra serial.")
    nonce = HiddenField(validators=[Optional(), Regexp(_NONCE, message="malformed form nonce")])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if valid and (self.quantity.data is None) == (not self.serials.data):
            self.serials.errors.append("give either a number of tonnes or a serial range")
            return False
        return valid

    def serial_range(self) -> SerialRange | None:
        return SerialRange.parse(self.serials.data) if self.serials.data else None


class TokenForm(FlaskForm):
    label = StringField("Label", validators=[DataRequired(), Length(max=120)],
                        description="What the token is for, e.g. 'ERP integration'.")


def _errors(form: FlaskForm) -> str:
    return "; ".join(f"{getattr(form, name).label.text}: {' '.join(messages)}"
                     for name, messages in form.errors.items())


def _key(form, command: str) -> str | None:
    nonce = form.nonce.data
    return f"web:{command}:{current_user.organisation}:{nonce}" if nonce else None


# --- orders --------------------------------------------------------------------------------
@bp.post("/orders")
@require("buyer")
def place_order():
    """Reserves the tonnes of a listing for the organisation, then on to checkout."""
    form = OrderForm()
    if not form.validate():
        abort(400, description=_errors(form))
    if form.retire_now.data and not (form.beneficiary.data or "").strip():
        # The quote page offers "retire on my organisation's behalf" without asking a name.
        form.beneficiary.data = current_user.organisation_name
    placed = market().place_order(
        form.listing_id.data.strip(), form.tonnes.data, current_user.organisation,
        current_user.account, retirement=form.claim() if form.retire_now.data else None,
        idempotency_key=_key(form, "order"))
    return redirect(url_for(".order", order_id=placed["order_id"]))


def _own_order(order_id: str):
    """The organisation's order; any other, or none, is the same 404."""
    if len(order_id) <= 64:
        order = market().get_order(order_id)
        if order.buyer_org == current_user.organisation:
            return order
    abort(404, description=f"unknown order {order_id[:64]}")


@bp.get("/orders/<order_id>")
@require("buyer")
def order(order_id: str):
    order = _own_order(order_id)
    if _card_form_for(order):
        # The payment was started: the card form, with a fresh setup for the card.
        if not count_card_setup():
            return _checkout(order, card_limited=True), 429
        return _checkout(order, card=market().start_card_payment(order.order_id))
    return _checkout(order)


def _card_form_for(order) -> bool:
    """Whether the buyer enters a card on this page: a reserved order whose payment was
    started, here where cards are taken (``_takes_cards``)."""
    return order.state == RESERVED and order.payment_id is not None and _takes_cards()


def _takes_cards() -> bool:
    """A provider that takes card details, and a publishable key to show its card form."""
    return (market().payments.takes_card_details
            and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY")))


def _checkout(order, payment: dict | None = None, card: dict | None = None,
              card_limited: bool = False):
    page = render_template(
        "buyer/order.html", order=order, payment=payment, card=card, card_limited=card_limited,
        card_attempts=current_app.config["CARD_ATTEMPTS_PER_HOUR"],
        offline=isinstance(market().payments, OfflinePaymentProvider),
        reserved=order.state == RESERVED, terminal=order.state in TERMINAL,
        sale=market().booked_sale(order),
        stripe_js_url=current_app.config.get("STRIPE_JS_URL"),
        publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY"))
    if card is None:
        return page
    # Only this page loads the provider's script, its card fields and their requests.
    return page, {"Content-Security-Policy": card_page_policy(current_app.config["STRIPE_JS_URL"])}


@bp.get("/orders/<order_id>.json")
@require("buyer")
def order_state(order_id: str):
    """The order's state, for the checkout page to notice a payment."""
    order = _own_order(order_id)
    until = order.reserved_until.isoformat() if order.reserved_until else None
    return {"order_id": order.order_id, "state": order.state, "reserved_until": until,
            "delivery_reference": order.delivery_reference}


@bp.post("/orders/<order_id>/pay")
@require("buyer")
def pay(order_id: str):
    """The demo's test card with the offline provider; with Stripe, the payment to confirm
    on Stripe."""
    order = _own_order(order_id)
    if order.state != RESERVED:  # e.g. a double click on "Pay": the first one paid
        flash(f"Order {order.order_id} is {order.state}: there is nothing to pay.", "warning")
        return redirect(url_for(".order", order_id=order.order_id))
    if not isinstance(market().payments, OfflinePaymentProvider):
        payment = market().start_payment(order.order_id)  # the reserved order's, now
        if _takes_cards():
            return redirect(url_for(".order", order_id=order.order_id))  # the card form
        return _checkout(order, payment=payment)
    outcome = market().pay_offline(order.order_id)
    flash(f"Test payment taken (no money moved): {outcome}.", "success")
    return redirect(url_for(".order", order_id=order.order_id))


_PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,200}")
_TOO_MANY_CARDS = ("too many card attempts from your organisation: at most {} an hour; "
                   "try again later, or ask your bank why the card is refused")


@bp.post("/orders/<order_id>/card")
@require("buyer")
def pay_by_card(order_id: str):
    """The card the buyer gave the provider on the order page (the provider's id for it,
    never a card number) pays the order's payment; JSON for the page's script. The order is
    fulfilled when the provider confirms the payment (its webhook)."""
    order = _own_order(order_id)
    if not market().payments.takes_card_details:
        return _card_error(409, f"payments here go through the {market().payments.name} "
                                "provider, which takes no card details")
    body = request.get_json(silent=True)
    method = body.get("payment_method") if isinstance(body, dict) else None
    if not isinstance(method, str) or not _PAYMENT_METHOD.fullmatch(method):
        return _card_error(400, "payment_method must be the provider's id of the card (pm_...)")
    if not count_card_charge():
        return _card_error(429, _TOO_MANY_CARDS.format(
            current_app.config["CARD_ATTEMPTS_PER_HOUR"]))
    try:
        answer = market().confirm_card_payment(order.order_id, method)
    except PaymentError as error:
        # Declined: a new setup, so that the buyer can try another card on the same page.
        again = {}  # else the page, reloaded, says what to do
        if count_card_setup():
            try:
                again = {"setup_client_secret": market().start_card_payment(
                    order.order_id)["setup_client_secret"]}
            except (PaymentError, IllegalTransitionError):
                pass
        return _card_error(status_for(error), str(error), **again)
    except IllegalTransitionError as error:
        return _card_error(409, str(error))
    return {"status": answer["status"], "client_secret": (
        answer["client_secret"] if answer["status"] == "requires_action" else None)}


def _card_error(status: int, message: str, **extra):
    return {"code": status, "status": HTTPStatus(status).phrase, "message": message,
            **extra}, status


@bp.post("/orders/<order_id>/cancel")
@require("buyer")
def cancel(order_id: str):
    order = _own_order(order_id)
    market().cancel_order(order.order_id, f"cancelled by the buyer ({current_user.email})")
    flash(f"Order {order.order_id} cancelled; its tonnes are on offer again.", "success")
    return redirect(url_for(".order", order_id=order.order_id))


@bp.get("/orders")
@require("buyer")
def orders():
    page = request.args.get("page", "1")
    state = request.args.get("state") or None
    if not (page.isdecimal() and page.isascii() and len(page) <= 6
            and 1 <= int(page) <= 100_000):
        abort(400, description="page must be a whole number from 1")
    page = int(page)
    if state is not None and state not in ORDER_STATES:
        abort(400, description=f"state must be one of {', '.join(ORDER_STATES)}")
    query = (request.args.get("q") or "").strip()[:64] or None
    rows, total = read_view().orders(
        buyer_org=current_user.organisation, state=state, query=query,
        limit=ORDERS_PER_PAGE, offset=(page - 1) * ORDERS_PER_PAGE)
    return render_template("buyer/orders.html", rows=rows, total=total, page=page,
                           per_page=ORDERS_PER_PAGE, state=state, query=query or "",
                           states=ORDER_STATES)


# --- portfolio and retirements -------------------------------------------------------------
@bp.get("/portfolio")
@require("buyer")
def portfolio():
    return _portfolio(RetireForm())


def _portfolio(form: RetireForm, status: int = 200):
    form.nonce.data = form.nonce.data or order_nonce()
    try:
        blocks = market().ledger.get_account(current_user.account).blocks
    except UnknownAccountError:  # a new organisation: nothing delivered yet
        blocks = []
    retirements, retired_count = retirements_of(
        read_view(), current_user.account, current_user.organisation)
    return render_template("buyer/portfolio.html", blocks=blocks,
                           retirements=with_phases(read_view(), retirements),
                           retired_count=retired_count, form=form), status


@bp.post("/portfolio/retire")
@require("buyer")
def retire():
    """Retires tonnes (oldest first) or an exact serial range from the organisation's
    holding, on the beneficiary's behalf."""
    form = RetireForm()
    if not form.validate():
        flash(f"Nothing was retired. {_errors(form)}", "error")
        return _portfolio(form, 400)
    retired = market().ledger.retire(
        current_user.account, form.claim(), quantity=form.quantity.data,
        serials=form.serial_range(), idempotency_key=_key(form, "retire"))
    pending = market().ledger.get_retirement(retired["retirement_id"]).pending
    flash(f"{retired['quantity']:,} t retired for {form.beneficiary.data.strip()}: "
          f"{retired['retirement_id']}" + (
              ", pending at Verra: Kapok has locked the serials, and the retirement is "
              "complete once Verra retires them too." if pending else "."), "success")
    return redirect(url_for(".portfolio"))


def _own_retirement(retirement_id: str):
    """The retirement if the organisation made it (from its holding or its order's escrow);
    any other, or none, is the same 404."""
    try:
        retirement = market().ledger.get_retirement(retirement_id[:64])
        holder = market().ledger.get_account(retirement.account)
    except (UnknownRetirementError, UnknownAccountError):
        holder = None
    if holder is not None and (holder.name == current_user.account or (
            holder.kind == ESCROW and holder.owner == current_user.organisation)):
        return retirement
    abort(404, description=f"unknown retirement {retirement_id[:64]}")


@bp.get("/retirements/<retirement_id>/certificate.pdf")
@require("buyer")
def certificate(retirement_id: str):
    return certificate_response(market(), _own_retirement(retirement_id).retirement_id)


# --- API tokens ----------------------------------------------------------------------------
@bp.route("/tokens", methods=["GET", "POST"])
@require("buyer")
def tokens():
    """The user's API tokens; a new one is shown once, on the page that created it."""
    form, issued, status = TokenForm(), None, 200
    if request.method == "POST":
        if not form.validate():
            flash(f"No token was created. {_errors(form)}", "error")
            status = 400
        else:
            try:
                count_token_issued()
            except RateLimitExceeded as refused:
                flash(f"No token was created. {refused.description}", "error")
                status = 429
            else:
                issued = identity().issue_token(current_user.email, form.label.data)
                form = TokenForm(formdata=None)
    return render_template("buyer/tokens.html", form=form, issued=issued,
                           tokens=identity().tokens_of(current_user.email)), status


@bp.post("/tokens/<token_id>/revoke")
@require("buyer")
def revoke_token(token_id: str):
    identity().revoke_token_of(current_user.email, token_id)
    flash("The token is revoked: machine clients using it are refused from now on.", "success")
    return redirect(url_for(".tokens"))
