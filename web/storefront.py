"""The public site and the buyers' shop: the Tambopata story, projects, catalogue, quotes,
the public retirement registry and the transparency page.

Views only translate HTTP: they read arguments, call one service or read function
(``web/figures.py``, ``ledger/read/public_registry.py``) and render. Nothing here needs a login.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, render_template, request, url_for
from werkzeug.routing import BuildError

from ledger.domain.errors import UnknownProjectError, UnknownRetirementError
from ledger.read.public_registry import search_retirements
from market.domain.listings import UnknownListingError
from market.domain.errors import MarketError
from web import charts, figures
from web.consistency import read_view
from web.errors import status_for
from web.quote_form import QuoteForm, QuoteInputError, quote_request
from web.registry_reports import phase_of, with_phases

bp = Blueprint("storefront", __name__)

MAX_QUERY = 120  # characters of a registry search
MAX_ID = 64  # characters of a project, listing or retirement id


def _market():
    return current_app.extensions["kapok_market"]


def _page_number() -> int:
    text = request.args.get("page", "1").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) < 1:
        abort(400, description=f"page must be a whole number from 1, not {text[:20]!r}")
    return int(text)


def _check_page_exists(page: figures.Page) -> None:
    if page.number > page.pages:
        abort(404, description=f"there is no page {page.number}: the last page is {page.pages}")


def _short(name: str, value: str, limit: int = MAX_ID) -> str:
    if len(value) > limit:
        abort(400, description=f"{name} is longer than {limit} characters")
    return value


@bp.get("/")
def home():
    market = _market()
    return render_template("storefront/home.html", figures=figures.headline(market),
                           listings=figures.catalogue(market)[:3])


@bp.get("/projects")
def projects():
    return render_template("storefront/projects.html",
                           projects=figures.projects_overview(_market()))


@bp.get("/projects/<registry_id>")
def project(registry_id: str):
    try:
        profile = figures.project_profile(_market(), _short("project id", registry_id))
    except UnknownProjectError:
        abort(404, description=f"there is no project {registry_id} on Kapok")
    return render_template("storefront/project.html", **profile)


def _catalogue_filter() -> dict:
    """The catalogue's filters from the query string; 400 for any that cannot be read."""
    args = request.args
    project = _short("project", args.get("project", "").strip()) or None
    vintage = args.get("vintage", "").strip()
    if vintage and not (vintage.isascii() and vintage.isdigit() and len(vintage) == 4):
        abort(400, description=f"vintage is a year such as 2021, not {vintage[:20]!r}")
    max_price, price = args.get("max_price", "").strip(), None
    if max_price:
        try:
            price = Decimal(_short("max price", max_price, 20))
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price <= 0:
            abort(400, description=f"max price is a positive amount such as 15.00, "
                                   f"not {max_price[:20]!r}")
    return {"project": project, "vintage": int(vintage) if vintage else None,
            "max_price": price}


@bp.get("/catalogue")
def catalogue():
    market = _market()
    chosen = _catalogue_filter()
    listings = market.listings()  # once for the page and its filters: each is a read
    page = figures.page_of(figures.catalogue(market, **chosen, listings=listings),
                           _page_number())
    _check_page_exists(page)
    return render_template("storefront/catalogue.html", page=page, chosen=chosen,
                           choices=figures.catalogue_choices(market, listings))


def _order_url() -> str:
    # The buyer blueprint places orders; its endpoint may not be registered yet.
    try:
        return url_for("buyer.place_order")
    except BuildError:
        return "/my/orders"


@bp.route("/catalogue/<listing_id>/quote", methods=["GET", "POST"])
def quote(listing_id: str):
    market = _market()
    try:
        listing = figures.listing_for_quote(market, _short("listing id", listing_id))
    except UnknownListingError:
        abort(404, description=f"there is no listing {listing_id} in the catalogue")
    form = QuoteForm()
    result, error, status = None, None, 200
    if request.method == "POST":
        try:
            asked = quote_request(form, listing["currency"])
            result = {"quote": market.quote(listing["listing_id"], **asked),
                      "estimate": asked.get("estimate")}
        except QuoteInputError as refused:
            error, status = str(refused), 400
        except MarketError as refused:
            error, status = str(refused), status_for(refused)
    return render_template("storefront/quote.html", listing=listing, form=form,
                           result=result, error=error, order_url=_order_url()), status


@bp.get("/registry")
def registry():
    text = _short("search", request.args.get("q", "").strip(), MAX_QUERY)
    project = _short("project", request.args.get("project", "").strip()) or None
    number = _page_number()
    view = read_view()
    rows, total = search_retirements(view, text, project, limit=figures.PER_PAGE,
                                     offset=(number - 1) * figures.PER_PAGE)
    page = figures.Page(with_phases(view, rows), number, total)
    if total:
        _check_page_exists(page)
    return render_template("storefront/registry.html", page=page, q=text, project=project,
                           projects=[row["registry_id"] for row in view.projects()])


@bp.get("/registry/<retirement_id>")
def retirement(retirement_id: str):
    try:
        record = _market().ledger.get_retirement(_short("retirement id", retirement_id))
    except UnknownRetirementError:
        abort(404, description=f"there is no retirement {retirement_id} in the registry")
    projects = {block.project for block in record.blocks}
    return render_template("storefront/retirement.html", retirement=record,
                           account=figures.public_account(_market(), record.account),
                           phase=phase_of(record),
                           registry_urls=figures.registry_urls(_market(), projects))


@bp.get("/transparency")
def transparency():
    market = _market()
    series = figures.tonnes_over_time()
    names = figures.farm_names(market)
    proceeds = []
    for journal in figures.proceeds_journals(market):
        by_project = figures.proceeds_by_project(journal)
        payees = figures.payee_totals(journal)
        proceeds.append({"currency": journal.currency, "payees": payees,
                         "charts": _money_charts(journal.currency, by_project, payees, names)})
    return render_template("storefront/transparency.html", series=series, proceeds=proceeds,
                           farm_names=names, tonnes_charts=_tonnes_charts(series))


def _money_text(amount) -> str:
    return f"{amount.currency} {amount.amount:,}"


def _tonnes_charts(series: dict) -> dict:
    """Tonnes issued, sold and retired per month, a column chart each."""
    return {name: charts.column_chart(
        f"Tonnes {name} per month",
        [charts.Bar(month, quantity, f"{quantity:,} t") for month, quantity in rows])
        for name, rows in series.items()}


def _money_charts(currency: str, by_project: list, payees: list, names: dict) -> dict:
    """One currency's money per project, per farm, and paid out against still owed."""
    farms = [payee for payee in payees if payee.farm_code]
    return {
        "by_project": charts.bar_chart(
            f"Money allocated per project ({currency})",
            [charts.Bar(project, total.amount, _money_text(total)) for project, total in by_project]),
        "by_farm": charts.bar_chart(
            f"Money allocated per farm ({currency})",
            [charts.Bar(f"{payee.farm_code} {names.get(payee.farm_code, '')}".strip(),
                        payee.allocated.amount, _money_text(payee.allocated)) for payee in farms]),
        "owed_vs_paid": charts.stacked_bar_chart(
            f"Paid out and still owed ({currency})", ["paid out", "still owed"],
            [charts.StackedBar(payee.farm_code or payee.recipient, (
                charts.Bar("paid out", payee.paid_out.amount, _money_text(payee.paid_out)),
                charts.Bar("still owed", max(payee.owed.amount, 0), _money_text(payee.owed))))
             for payee in payees]),
    }
