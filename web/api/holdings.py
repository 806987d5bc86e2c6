"""Holdings: the serial blocks an account holds, by project and vintage."""

from __future__ import annotations

from flask import abort
from flask.views import MethodView
from flask_login import current_user

from ledger.domain.errors import UnknownAccountError
from ledger.domain.projects import NATIVE, VERRA
from ledger.domain.serials import total_quantity
from web.api.access import is_operator, token_required
from web.api.pagination import ApiBlueprint, page_of, take_page
from web.api.schemas import HoldingFilterSchema, HoldingSchema
from web.api.services import market
from web.consistency import read_view

bp = ApiBlueprint("holdings", __name__, url_prefix="/api/v1/holdings",
                  description="Credits held, with their serial ranges.")


def block_resource(block) -> dict:
    """A serial block as the API shows it, with whose serials they are."""
    return {"serial": block.serial, "batch": block.batch, "first": block.first,
            "last": block.last, "quantity": block.quantity,
            "registry": VERRA if block.mirrored else NATIVE}


def account_holdings(name: str, project: str | None, vintage: int | None) -> list[dict]:
    """One row per project vintage the account holds, with its blocks (none if the account
    was never opened: a buyer that has not bought yet)."""
    try:
        account = market().ledger.get_account(name)
    except UnknownAccountError:
        return []
    groups: dict[tuple[str, int], list] = {}
    for block in account.blocks:
        if (project is None or block.project == project.upper()) and \
                (vintage is None or block.vintage == vintage):
            groups.setdefault((block.project, block.vintage), []).append(block)
    return [
        {"account": account.name, "project": key[0], "vintage": key[1],
         "status": account.status, "quantity": total_quantity(blocks),
         "blocks": [block_resource(block) for block in blocks]}
        for key, blocks in sorted(groups.items())
    ]


@bp.route("")
class Holdings(MethodView):
    @token_required(bp, "buyer", "operator")
    @bp.arguments(HoldingFilterSchema, location="query")
    @bp.response(200, page_of(HoldingSchema))
    @bp.paginate()
    @bp.refuses(404)
    def get(self, filters, pagination_parameters):
        """Your organisation's holdings by project and vintage, with serial ranges
        (operators: any ``account``, or every account)."""
        account = filters.get("account")
        if account is not None:
            if not is_operator() and account != current_user.account:
                abort(404, description=f"unknown account {account}")
            names = [account]
        elif is_operator():
            names = [row["name"] for row in read_view().accounts()]
        else:
            names = [current_user.account]
        rows = [row for name in names
                for row in account_holdings(name, filters.get("project"), filters.get("vintage"))]
        return take_page(rows, pagination_parameters)
