"""What the public pages show, gathered from the market's services and the ledger's read model:
headline figures, project profiles, the filtered catalogue, and where sale proceeds went.

Read-only. Money stays ``Money`` (exact Decimals, from minor units); tonnes stay ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from ledger.domain.accounts import ESCROW
from ledger.domain.errors import UnknownAccountError
from ledger.read.public_registry import tonnes_by_month
from market.domain.errors import NoRuleInForceError
from market.domain.listings import ACTIVE, listing_summary
from market.domain.money import CURRENCIES, Money
from market.domain.proceeds import FARMERS, split_proceeds
from web.consistency import read_view

PER_PAGE = 20
IN_ESCROW = "reserved in escrow for a buyer's order"
EXAMPLE_SALE = Decimal(100)  # the benefit-sharing example: what each party gets of 100


@dataclass(frozen=True)
class Page:
    """One page of a longer list: ``items`` of page ``number`` (from 1) of ``total``."""

    items: Sequence
    number: int
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_of(items: Sequence, number: int, per_page: int = PER_PAGE) -> Page:
    start = (number - 1) * per_page
    return Page(list(items[start:start + per_page]), number, len(items), per_page)


# --- headline figures ----------------------------------------------------------------------


def tonnes_over_time() -> dict[str, list[tuple[str, int]]]:
    """Tonnes issued, sold and retired per month, from the read model."""
    return tonnes_by_month(read_view())


def headline(market) -> dict:
    """The totals the home page leads with: tonnes issued, sold and retired, and the money
    allocated to the farms, per currency sold in."""
    totals = {name: sum(tonnes for _, tonnes in rows)
              for name, rows in tonnes_over_time().items()}
    to_farms = [Money.from_minor(sum(row.allocated.minor for row in payee_totals(journal)
                                     if row.recipient == FARMERS), journal.currency)
                for journal in proceeds_journals(market)]
    return {**totals, "to_farms": to_farms}


# --- projects ------------------------------------------------------------------------------


def project_profile(market, registry_id: str) -> dict:
    """A project with its vintages (labels, tonnes issued and withheld as buffer), farms, the
    benefit-sharing rule in force and what an example sale gives each party, and its live
    listings. Raises UnknownProjectError."""
    project = market.ledger.get_project(registry_id)
    issued: dict[int, list[int]] = {}
    for row in read_view().issuances():
        if row["project"] == project.registry_id:
            totals = issued.setdefault(row["vintage"], [0, 0])
            totals[0] += row["last_serial"] - row["first_serial"] + 1
            totals[1] += row["buffer_quantity"]
    # A mirrored project's credits are Verra's: Kapok shows where those it holds stand.
    in_kapok: dict[int, dict[str, int]] = {}
    if project.details.mirrored:
        for row in read_view().balances(project=project.registry_id):
            by_status = in_kapok.setdefault(row["vintage"], {})
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["quantity"]
    vintages = [{"year": vintage.year, "labels": vintage.labels,
                 "corresponding_adjustment": vintage.corresponding_adjustment,
                 "issued": issued.get(vintage.year, [0, 0])[0],
                 "buffer": issued.get(vintage.year, [0, 0])[1],
                 "in_kapok": in_kapok.get(vintage.year, {})}
                for vintage in sorted(project.vintages.values(), key=lambda v: v.year)]
    listings = catalogue(market, project=project.registry_id)
    currency = listings[0]["currency"] if listings else "USD"
    farms = market.farms(project.registry_id)
    return {"project": project, "details": project.details, "vintages": vintages,
            "farms": farms, "listings": listings,
            **benefit_sharing(market, project.registry_id, farms, currency)}


def benefit_sharing(market, registry_id: str, farms, currency: str) -> dict:
    """The rule in force now (None if there is none yet) and how it splits an example sale
    of 100 units of ``currency``, farm by farm, by the domain's own allocation."""
    try:
        rule = market.benefit_rule(registry_id).rule_at(market.now())
    except NoRuleInForceError:
        return {"rule": None, "example": None, "example_split": []}
    example = Money(EXAMPLE_SALE, currency).quantize()
    split = split_proceeds(example.minor, currency, rule, farms)
    return {"rule": rule, "example": example,
            "example_split": [(allocation.recipient, allocation.farm_code,
                               Money.from_minor(allocation.minor, currency))
                              for allocation in split]}


def registry_urls(market, registry_ids) -> dict[str, str | None]:
    """Each project's page at its registry of record (None: Kapok is its registry)."""
    return {registry_id: market.ledger.get_project(registry_id).details.registry_url
            for registry_id in registry_ids}


def projects_overview(market) -> list[dict]:
    """Every project's details and vintage years, in registry id order."""
    projects = [market.ledger.get_project(row["registry_id"])
                for row in read_view().projects()]
    return [{"details": project.details, "vintages": sorted(project.vintages)}
            for project in projects]


# --- catalogue -----------------------------------------------------------------------------


def catalogue(market, project: str | None = None, vintage: int | None = None,
              max_price: Decimal | None = None, listings: Sequence | None = None) -> list[dict]:
    """Summaries of the active listings (``listing_summary``), by project then vintage,
    narrowed to a project, a vintage and a highest base price per tonne. ``listings``: the
    market's listings if already loaded for this request (each load is a database read)."""
    projects: dict[str, object] = market.listed_projects()
    rows = []
    for listing in market.listings() if listings is None else listings:
        if listing.status != ACTIVE:
            continue
        if project and listing.project_registry_id != project.upper():
            continue
        if vintage is not None and listing.vintage_year != vintage:
            continue
        if max_price is not None and listing.price_per_tonne > max_price:
            continue
        registry_id = listing.project_registry_id
        if registry_id not in projects:
            projects[registry_id] = market.ledger.get_project(registry_id)
        rows.append(listing_summary(listing, projects[registry_id]))
    return sorted(rows, key=lambda row: (row["project_registry_id"], row["vintage_year"],
                                         row["price_per_tonne"]))


def catalogue_choices(market, listings: Sequence | None = None) -> dict:
    """The projects and vintages the catalogue can be filtered by."""
    active = [listing for listing in (market.listings() if listings is None else listings)
              if listing.status == ACTIVE]
    return {"projects": sorted({listing.project_registry_id for listing in active}),
            "vintages": sorted({listing.vintage_year for listing in active})}


def listing_for_quote(market, listing_id: str) -> dict:
    """A listing's summary for the price calculator. Raises UnknownListingError."""
    listing = market.get_listing(listing_id)
    return listing_summary(listing, market.ledger.get_project(listing.project_registry_id))


# --- proceeds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayeeTotal:
    """What one recipient (or one farm of the farmers' share) was allocated, was paid out
    and is still owed."""

    recipient: str
    farm_code: str | None
    allocated: Money
    paid_out: Money
    owed: Money


def proceeds_journals(market) -> list:
    """The proceeds journal of every currency that has one with entries."""
    journals = [market.proceeds(code) for code in CURRENCIES]
    return [journal for journal in journals if journal.has_entries]


def payee_totals(journal) -> list[PayeeTotal]:
    """Every payee of a journal, farms last, with allocated, paid out and owed."""
    payees = sorted(journal.payees(), key=lambda payee: payee[0] == FARMERS)  # stable

    def money(minor: int) -> Money:
        return Money.from_minor(minor, journal.currency)

    return [PayeeTotal(recipient, farm, money(journal.allocated(recipient, farm)),
                       money(journal.paid_out(recipient, farm)),
                       money(journal.owed(recipient, farm)))
            for recipient, farm in payees]


def proceeds_by_project(journal) -> list[tuple[str, Money]]:
    """Money allocated to payees per project whose credits were sold (refunds deducted)."""
    return [(project, Money.from_minor(minor, journal.currency))
            for project, minor in sorted(journal.totals_by_project().items())]


def farm_names(market) -> dict[str, str]:
    """Farm code -> the farming family's name, for every project's farms."""
    return {farm.farm_code: farm.details.farmer_name
            for row in read_view().projects()
            for farm in market.farms(row["registry_id"])}


def public_account(market, name: str) -> str:
    """How a public page names an account. An order's escrow account was named after the
    order before its name became a digest (old ones keep it), and an order id is its buyer's
    business (and names the order to whoever would forge its payment events): public pages
    say only that the credits were in escrow."""
    try:
        escrow = market.ledger.get_account(name).kind == ESCROW
    except UnknownAccountError:
        escrow = False
    return IN_ESCROW if escrow else name
