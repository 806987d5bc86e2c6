"""Projects: what credits are issued for, with their vintages, labels and buffer share."""

from __future__ import annotations

from flask.views import MethodView

from web.api.pagination import ApiBlueprint, page_of, take_page
from web.api.schemas import ProjectSchema
from web.api.services import market
from web.consistency import read_view

bp = ApiBlueprint("projects", __name__, url_prefix="/api/v1/projects",
                  description="Carbon projects registered on Kapok.")


def project_resource(project) -> dict:
    details = project.details
    return {
        **{name: getattr(details, name) for name in ProjectSchema().fields
           if hasattr(details, name)},
        "vintages": [project.vintages[year] for year in sorted(project.vintages)],
    }


@bp.route("")
class Projects(MethodView):
    @bp.response(200, page_of(ProjectSchema))
    @bp.paginate()
    def get(self, pagination_parameters):
        """Every project, by registry id."""
        registry_ids = [row["registry_id"] for row in read_view().projects()]
        page = take_page(registry_ids, pagination_parameters)
        return [project_resource(market().ledger.get_project(registry_id)) for registry_id in page]


@bp.route("/<registry_id>")
class ProjectById(MethodView):
    @bp.response(200, ProjectSchema)
    @bp.refuses(404)
    def get(self, registry_id: str):
        """One project, e.g. VCS-1067."""
        return project_resource(market().ledger.get_project(registry_id))
