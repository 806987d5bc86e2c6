"""Listings (tonnes of a project vintage for sale) and quotes for buying from one."""

from __future__ import annotations

from flask.views import MethodView

from market.domain.listings import listing_summary
from web.api.pagination import ApiBlueprint, page_of, take_page
from web.api.schemas import ListingFilterSchema, ListingSchema, QuoteRequestSchema, QuoteSchema
from web.api.services import market

bp = ApiBlueprint("listings", __name__, url_prefix="/api/v1",
                  description="What is for sale, and what it costs.")


def listing_resource(listing, projects: dict | None = None) -> dict:
    """The listing with its project's facts; ``projects`` keeps the projects one response
    has loaded already (a page's listings share a few projects: one read each)."""
    projects = {} if projects is None else projects
    registry_id = listing.project_registry_id
    if registry_id not in projects:
        projects[registry_id] = market().ledger.get_project(registry_id)
    return listing_summary(listing, projects[registry_id])


@bp.route("/listings")
class Listings(MethodView):
    @bp.arguments(ListingFilterSchema, location="query")
    @bp.response(200, page_of(ListingSchema))
    @bp.paginate()
    def get(self, filters, pagination_parameters):
        """Listings, optionally of one project and vintage."""
        project, vintage = filters.get("project"), filters.get("vintage")
        listings = [listing for listing in market().listings()
                    if (project is None or listing.project_registry_id == project.upper())
                    and (vintage is None or listing.vintage_year == vintage)]
        page = take_page(listings, pagination_parameters)
        projects = market().listed_projects()
        return [listing_resource(listing, projects) for listing in page]


@bp.route("/listings/<listing_id>")
class ListingById(MethodView):
    @bp.response(200, ListingSchema)
    @bp.refuses(404)
    def get(self, listing_id: str):
        """One listing, with its project's facts and what is available."""
        return listing_resource(market().get_listing(listing_id))


@bp.route("/quotes")
class Quotes(MethodView):
    @bp.arguments(QuoteRequestSchema)
    @bp.response(200, QuoteSchema)
    @bp.refuses(400, 404, 409)
    def post(self, asked):
        """Prices a purchase: by tonnes, by an amount to spend, or by emissions activities
        (the whole tonnes that offset them). A quote is valid until ``expires_at``."""
        estimate = asked.get("estimate")
        quote = market().quote(str(asked["listing_id"]), tonnes=asked.get("tonnes"),
                               amount=asked.get("amount"), estimate=estimate)
        return {**vars(quote), "listing_id": str(quote.listing_id),
                "total": f"{quote.total.amount:f}",
                "estimate_kg_co2e": estimate.total_kg if estimate else None}
