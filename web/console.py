"""The Ecosphere+ operators' console: projects, issuance, farms, listings, orders, benefit
rules, payouts, balances, people, and retirements pending at Verra with its reconciliations.

Operators only. A view parses one form (``web.console_forms``), calls one service of the
market or the identity store, and redirects; what it shows comes from ``web.console_reports``.
A form that does not parse is shown again with its errors (400); a refusal by the market is
shown with its message and the status ``web.errors`` gives it, and saves nothing.
"""

from __future__ import annotations

from typing import Callable

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template,
                   request, url_for)
from flask_login import current_user
from wtforms import SelectChoice

from ledger.domain.accounts import INVENTORY
from ledger.domain.errors import (InvalidSerialError, LedgerError, RegistryMismatchError,
                                  RegistryPhaseError)
from market.domain.errors import MarketError, NoRuleInForceError
from market.domain.money import Money
from web.auth import require
from web.consistency import read_view
from web.console_forms import (CURRENCIES, BalanceFilter, ConfirmRetirementForm,
                               FailRetirementForm, FarmForm, IssueForm, ListingCapForm,
                               ListingForm, ListingStatusForm, OfferForm, OrderFilter,
                               PayoutForm, PriceForm, ProjectForm, QueryForm, ReasonForm,
                               RefundForm, ReleaseForm, ReservationCapsForm, RuleForm,
                               StatementFilter, UserForm, VintageForm)
from web.console_reports import (PAGE_SIZE, Page, dashboard_figures, first_row, issued_blocks,
                                 money_text, page_of, payees, statement_csv)
from web.errors import status_for
from web.registry_reports import last_checks, pending_rows, quarantined, registry_blocks
from identity.domain import IdentityError

bp = Blueprint("console", __name__, url_prefix="/console")
REFUSALS = (LedgerError, MarketError, IdentityError)
OPERATOR = "operator"
RANGES_SHOWN = 500  # of a mirrored project's blocks from Verra's exports, on its page


def market():
    return current_app.extensions["kapok_market"]


def identity():
    return current_app.extensions["kapok_identity"]


@bp.context_processor
def console_helpers() -> dict:
    return {"money": money_text,  # for people: "USD 1,234.50"
            "money_amount": lambda minor, currency: str(Money.from_minor(minor, currency)
                                                        .amount)}  # for a form: "1234.50"


def submitted(form, command: Callable[[], Response], page: Callable[[], str]):
    """Runs ``command`` (it returns a redirect) once ``form`` is valid; otherwise, or when the
    ledger or market refuses it, renders ``page`` again with a 4xx status."""
    status = 200
    if form.validate_on_submit():
        try:
            return command()
        except REFUSALS as error:
            flash(str(error), "error")
            status = status_for(error)
    elif request.method == "POST":
        status = 400
        # A hidden field's error shows beside no input: say it where the operator looks.
        for field in form:
            if field.type == "HiddenField" and field.errors:
                flash(f"the form's {field.name} was altered ({'; '.join(field.errors)}): "
                      "reload the page and try again", "error")
    return page(), status


def done(message: str, endpoint: str, **values) -> Response:
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def filters(form_class):
    """A filter form read from the query string; a malformed filter is a 400."""
    form = form_class(formdata=request.args)
    if not form.validate():
        abort(400, description="; ".join(f"{getattr(form, name).label.text}: {', '.join(errors)}"
                                         for name, errors in form.errors.items()))
    return form


def project_choices() -> list[SelectChoice]:
    return [SelectChoice(row["registry_id"], f"{row['registry_id']} · {row['name'][:60]}")
            for row in read_view().projects()]


def inventory_accounts() -> list[str]:
    return [row["name"] for row in read_view().accounts()
            if row["kind"] == INVENTORY]


# --- dashboard -----------------------------------------------------------------------------

@bp.get("/")
@require(OPERATOR)
def home():
    return render_template("console/home.html", figures=dashboard_figures(market()))


# --- projects, vintages, issuance ----------------------------------------------------------

@bp.get("/projects")
@require(OPERATOR)
def projects():
    return render_template("console/projects.html", projects=read_view().projects())


@bp.route("/projects/new", methods=["GET", "POST"])
@require(OPERATOR)
def new_project():
    form = ProjectForm()
    form.inventory_account.choices = inventory_accounts()

    def register():
        result = market().ledger.register_project(form.details(), idempotency_key=form.key.data)
        return done(f"Project {result['project']} registered; add its vintages next.",
                    ".project", registry_id=result["project"])

    return submitted(form, register, lambda: render_template("console/project_new.html", form=form))


def _project_page(registry_id: str, vintage_form=None, issue_form=None):
    """The project with its vintages and issued blocks, and the forms to add to them."""
    found = market().ledger.get_project(registry_id)
    vintage_form = vintage_form or VintageForm(formdata=None)
    issue_form = issue_form or IssueForm(formdata=None)
    issue_form.vintage.choices = [SelectChoice(year, str(year)) for year in sorted(found.vintages)]
    blocks = issued_blocks(read_view().issuances(), found.registry_id,
                           found.details.country)
    ranges = registry_blocks(read_view(), found.registry_id, RANGES_SHOWN) \
        if found.details.mirrored else []
    return found, lambda: render_template(
        "console/project.html", project=found, vintages=sorted(found.vintages.values(),
                                                                key=lambda v: v.year),
        blocks=blocks, vintage_form=vintage_form, issue_form=issue_form, ranges=ranges,
        range_limit=RANGES_SHOWN)


@bp.get("/projects/<registry_id>")
@require(OPERATOR)
def project(registry_id):
    return _project_page(registry_id)[1]()


@bp.post("/projects/<registry_id>/vintages")
@require(OPERATOR)
def add_vintage(registry_id):
    form = VintageForm()
    found, page = _project_page(registry_id, vintage_form=form)

    def add():
        vintage = form.vintage()
        if vintage.year in found.vintages:
            flash(f"Vintage {vintage.year} exists already; it was left as it was.", "warning")
            return redirect(url_for(".project", registry_id=found.registry_id))
        market().ledger.add_vintage(found.registry_id, vintage, idempotency_key=form.key.data)
        return done(f"Vintage {vintage.year} added.", ".project", registry_id=found.registry_id)

    return submitted(form, add, page)


@bp.post("/projects/<registry_id>/issuances")
@require(OPERATOR)
def issue(registry_id):
    form = IssueForm()
    found, page = _project_page(registry_id, issue_form=form)

    def issue_credits():
        result = market().ledger.issue(found.registry_id, form.vintage.data, form.quantity.data,
                                       idempotency_key=form.key.data)
        return done(f"Issued {result['quantity']:,} t as {result['serial']}, of which "
                    f"{result['buffer_quantity']:,} t went to the buffer pool and the rest to "
                    f"{result['account']}.", ".project", registry_id=found.registry_id)

    return submitted(form, issue_credits, page)


# --- farms ---------------------------------------------------------------------------------

@bp.route("/farms", methods=["GET", "POST"])
@require(OPERATOR)
def farms():
    form = FarmForm(project=request.args.get("project"))
    form.project.choices = project_choices()

    def register():
        market().register_farm(form.project.data, form.farm_code.data, form.details(),
                               idempotency_key=form.key.data)
        return done(f"Farm {form.farm_code.data} registered.", ".farms",
                    project=form.project.data)

    def page():
        by_project = {choice.value: market().farms(choice.value) for choice in form.project.choices}
        return render_template("console/farms.html", form=form, by_project=by_project)

    return submitted(form, register, page)


# --- listings ------------------------------------------------------------------------------

def _listings_page():
    return render_template("console/listings.html", listings=market().listings(),
                           caps=market().reservation_policy())


@bp.get("/listings")
@require(OPERATOR)
def listings():
    return _listings_page()


@bp.route("/listings/new", methods=["GET", "POST"])
@require(OPERATOR)
def new_listing():
    form = ListingForm()
    form.project.choices = project_choices()
    form.inventory_account.choices = inventory_accounts()

    def create():
        result = market().create_listing(**form.terms())
        return done(f"Listing {result['listing_id']} created.", ".listings")

    return submitted(form, create, lambda: render_template("console/listing_new.html", form=form))


@bp.post("/listings/<listing_id>/status")
@require(OPERATOR)
def listing_status(listing_id):
    form = ListingStatusForm()
    return submitted(form, lambda: _changed(listing_id, status=form.status.data),
                     _listings_with_errors(form))


@bp.post("/listings/<listing_id>/price")
@require(OPERATOR)
def listing_price(listing_id):
    form = PriceForm()
    return submitted(form, lambda: _changed(listing_id, **form.terms()),
                     _listings_with_errors(form))


@bp.post("/listings/<listing_id>/offer")
@require(OPERATOR)
def listing_offer(listing_id):
    form = OfferForm()
    return submitted(form, lambda: _changed(listing_id, on_offer=form.on_offer.data),
                     _listings_with_errors(form))


@bp.post("/listings/<listing_id>/reservation-cap")
@require(OPERATOR)
def listing_reservation_cap(listing_id):
    form = ListingCapForm()

    def set_cap():
        result = market().set_listing_reservation_cap(listing_id, form.cap.data)
        return done(f"One organisation may now hold up to {result['per_listing']:,} t reserved "
                    f"on listing {result['listing_id']}.", ".listings")

    return submitted(form, set_cap, _listings_with_errors(form))


def _changed(listing_id: str, **change) -> Response:
    result = market().change_listing(listing_id, **change)
    return done(f"Listing {listing_id} is {result['status']} with {result['available']:,} t "
                f"available.", ".listings")


def _listings_with_errors(form):
    def page():
        for field in form:
            for error in field.errors:
                flash(f"{field.label.text}: {error}", "error")
        return _listings_page()

    return page


# --- orders --------------------------------------------------------------------------------

@bp.get("/orders")
@require(OPERATOR)
def orders():
    form = filters(OrderFilter)
    view = read_view()
    number = form.page.data or 1
    rows, total = view.orders(buyer_org=form.buyer.data or None, state=form.state.data or None,
                              query=form.q.data or None, limit=PAGE_SIZE,
                              offset=first_row(number))
    return render_template("console/orders.html", form=form,
                           page=Page(rows, number, PAGE_SIZE, total))


def _order_page(order_id: str, cancel_form=None, refund_form=None):
    found = market().get_order(order_id)
    order = market().order_summary(found)
    return lambda: render_template(
        "console/order.html", order=order, sale=market().booked_sale(found),
        flags=found.flags, given_back_minor=found.reversed_minor, note=found.note,
        cancel_form=cancel_form or ReasonForm(formdata=None),
        refund_form=refund_form or RefundForm(formdata=None))


@bp.get("/orders/<order_id>")
@require(OPERATOR)
def order(order_id):
    return _order_page(order_id)()


@bp.post("/orders/<order_id>/cancel")
@require(OPERATOR)
def cancel_order(order_id):
    form = ReasonForm()

    def cancel():
        result = market().cancel_order(order_id, form.reason.data.strip())
        return done(f"Order {result['order_id']} cancelled; its tonnes are back on offer.",
                    ".order", order_id=result["order_id"])

    return submitted(form, cancel, _order_page(order_id, cancel_form=form))


@bp.post("/orders/<order_id>/refund")
@require(OPERATOR)
def refund_order(order_id):
    form = RefundForm()

    def refund():
        result = market().refund_order(order_id, form.reason.data.strip(),
                                       recover_credits=form.recover_credits.data)
        return done(f"Order {result['order_id']} refunded.", ".order",
                    order_id=result["order_id"])

    return submitted(form, refund, _order_page(order_id, refund_form=form))


# --- reservations --------------------------------------------------------------------------

def _reservations_page(caps_form=None):
    number = filters(QueryForm).page.data or 1
    rows, total = read_view().orders(state="reserved", limit=PAGE_SIZE,
                                     offset=first_row(number))
    defaults = market().reservation_caps()
    caps_form = caps_form or ReservationCapsForm(formdata=None, per_listing=defaults.per_listing,
                                                 per_organisation=defaults.per_organisation)
    return lambda: render_template("console/reservations.html", form=caps_form,
                                   page=Page(rows, number, PAGE_SIZE, total))


@bp.get("/reservations")
@require(OPERATOR)
def reservations():
    return _reservations_page()()


@bp.post("/reservations/caps")
@require(OPERATOR)
def reservation_caps():
    form = ReservationCapsForm()

    def set_caps():
        result = market().set_reservation_caps(form.per_listing.data, form.per_organisation.data)
        return done(f"From now on one organisation may hold up to {result['per_listing']:,} t "
                    f"reserved on a listing and {result['per_organisation']:,} t in all.",
                    ".reservations")

    return submitted(form, set_caps, _reservations_page(form))


def _release_page(order_id: str, form=None):
    order = market().order_summary(market().get_order(order_id))
    return lambda: render_template("console/release.html", order=order,
                                   form=form or ReleaseForm(formdata=None))


@bp.get("/orders/<order_id>/release")
@require(OPERATOR)
def confirm_release(order_id):
    return _release_page(order_id)()


@bp.post("/orders/<order_id>/release")
@require(OPERATOR)
def release_reservation(order_id):
    form = ReleaseForm()

    def release():
        note = (form.note.data or "").strip()
        reason = f"reservation released by {current_user.email}" + (f": {note}" if note else "")
        result = market().release_reservation(order_id, reason)
        return done(f"Order {result['order_id']} cancelled; its {result['tonnes']:,} t are back "
                    "on offer.", ".reservations")

    return submitted(form, release, _release_page(order_id, form))


# --- benefit-sharing rules -----------------------------------------------------------------

def _rule_versions(registry_id: str) -> list:
    try:
        return market().benefit_rule(registry_id).versions
    except NoRuleInForceError:
        return []


@bp.route("/rules", methods=["GET", "POST"])
@require(OPERATOR)
def rules():
    form = RuleForm(project=request.args.get("project"))
    form.project.choices = project_choices()

    def set_rule():
        result = market().set_benefit_rule(form.project.data, form.shares.data, form.effective())
        return done(f"Version {result['version']} of the rule of {result['project']} recorded.",
                    ".rules")

    def page():
        versions = {choice.value: _rule_versions(choice.value) for choice in form.project.choices}
        return render_template("console/rules.html", form=form, versions=versions)

    return submitted(form, set_rule, page)


# --- payouts -------------------------------------------------------------------------------

@bp.route("/payouts", methods=["GET", "POST"])
@require(OPERATOR)
def payouts():
    # A payee's "Pay" link fills in who and what is owed; the operator adds the date and the
    # bank's reference (and may lower the amount for a part payment).
    args = request.args
    form = PayoutForm(currency=args.get("currency", "USD"), recipient=args.get("recipient"),
                      farm_code=args.get("farm_code"), amount=args.get("amount"))

    def record():
        result = market().record_payout(form.currency.data, form.recipient.data,
                                        form.farm_code.data or None, form.amount_minor(),
                                        form.paid_on.data, form.reference.data.strip())
        return done(f"Payout {result['reference']} recorded; "
                    f"{money_text(result['owed'], form.currency.data)} is still owed.",
                    ".payouts", currency=form.currency.data)

    def page():
        owed = {code: payees(market().proceeds(code)) for code in CURRENCIES}
        return render_template("console/payouts.html", form=form, owed=owed)

    return submitted(form, record, page)


def _statement(form) -> list:
    return read_view().statement(
        form.currency.data, form.recipient.data or None, form.farm.data or None,
        form.start.data, form.end.data, project=form.project.data or None)


@bp.get("/payouts/statement")
@require(OPERATOR)
def statement():
    form = filters(StatementFilter)
    return render_template("console/statement.html", form=form, rows=_statement(form),
                           currency=form.currency.data)


@bp.get("/payouts/statement.csv")
@require(OPERATOR)
def statement_download():
    form = filters(StatementFilter)
    name = f"kapok-proceeds-{form.currency.data}.csv"
    return Response(statement_csv(_statement(form), form.currency.data), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- balances ------------------------------------------------------------------------------

@bp.get("/balances")
@require(OPERATOR)
def balances():
    form = filters(BalanceFilter)
    rows = read_view().balances(
        account=form.account.data or None, project=form.project.data or None,
        vintage=form.vintage.data, status=form.status.data or None)
    return render_template("console/balances.html", form=form,
                           page=page_of(rows, form.page.data or 1))


# --- people --------------------------------------------------------------------------------

@bp.route("/users", methods=["GET", "POST"])
@require(OPERATOR)
def users():
    form = UserForm()

    def add():
        person = identity().add_user(form.email.data, form.name.data, form.role.data,
                                     form.password.data)
        return done(f"{person.name} can now log in as {person.role}.", ".users")

    return submitted(form, add, lambda: render_template(
        "console/users.html", form=form, people=identity().people()))


# --- retirements pending at Verra, reconciliation ------------------------------------------

def _registry_page(confirm_forms: dict | None = None, fail_forms: dict | None = None):
    """Retirements pending at Verra, oldest first, each with its forms (a form just sent
    keeps what was typed and its errors), the last reconciliation of each mirrored project
    and the quarantined tonnes."""
    def page() -> str:
        view = read_view()
        mirrored = [row["registry_id"] for row in view.projects()
                    if market().ledger.get_project(row["registry_id"]).details.mirrored]
        rows = pending_rows(view)
        for row in rows:
            row["order_id"] = view.order_of_escrow(row["account"])
        return render_template(
            "console/registry.html", rows=rows, checks=last_checks(view, mirrored),
            quarantined=quarantined(view), confirm_forms=confirm_forms or {},
            fail_forms=fail_forms or {}, blank_confirm=ConfirmRetirementForm(formdata=None),
            blank_fail=FailRetirementForm(formdata=None))

    return page


@bp.get("/registry")
@require(OPERATOR)
def registry():
    return _registry_page()()


@bp.post("/registry/<retirement_id>/confirm")
@require(OPERATOR)
def confirm_retirement(retirement_id):
    form = ConfirmRetirementForm()
    page = _registry_page(confirm_forms={retirement_id: form})

    def confirm():
        try:
            result = market().ledger.confirm_registry_retirement(
                retirement_id[:64], form.serials.data, form.retired_on.data,
                by=current_user.email)
        except (RegistryMismatchError, InvalidSerialError) as error:
            form.serials.errors.append(str(error))  # beside what was typed
            return page(), status_for(error)
        return done(f"Retirement {result['retirement_id']} is confirmed at Verra on "
                    f"{result['registry_date']}.", ".registry")

    return submitted(form, confirm, page)


@bp.post("/registry/<retirement_id>/fail")
@require(OPERATOR)
def fail_retirement(retirement_id):
    form = FailRetirementForm()

    def fail():
        if form.confirmed.data != "yes":  # the first step: say what failing it does
            retirement = market().ledger.get_retirement(retirement_id[:64])
            if not retirement.pending:
                raise RegistryPhaseError(f"retirement {retirement.retirement_id} is not "
                                         "pending at Verra: there is nothing to fail")
            return render_template(
                "console/registry_fail.html", retirement=retirement, form=form,
                returned_to=market().ledger.sale_side.returned_to(retirement))
        result = market().ledger.fail_registry_retirement(
            retirement_id[:64], form.reason.data.strip(), by=current_user.email)
        return done(f"Retirement {result['retirement_id']} failed at Verra; its credits are "
                    f"back in {result['returned_to']}.", ".registry")

    return submitted(form, fail, _registry_page(fail_forms={retirement_id: form}))
