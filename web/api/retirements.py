"""Retirements: the public registry of credits retired for good, a buyer's own retirements,
and their certificates."""

from __future__ import annotations

from datetime import date

from flask import url_for
from flask.views import MethodView
from flask_login import current_user

from ledger.domain.accounts import ESCROW
from ledger.domain.errors import UnknownAccountError, UnknownRetirementError
from ledger.domain.serials import SerialRange
from ledger.read.registry_queries import registry_phases
from web.api.access import token_required
from web.api.holdings import block_resource
from web.api.pagination import ApiBlueprint, page_of, take_page
from web.api.schemas import RetireSchema, RetirementListItemSchema, RetirementSchema, claim_of
from web.api.services import market
from web.consistency import read_view

bp = ApiBlueprint("retirements", __name__, url_prefix="/api/v1/retirements",
                  description="Credits retired on a beneficiary's behalf: final and public.")


def retirement_resource(retirement) -> dict:
    claim = retirement.claim
    return {
        "retirement_id": retirement.retirement_id, "beneficiary": claim.beneficiary,
        "reason": claim.reason, "details": claim.details, "period_start": claim.period_start,
        "period_end": claim.period_end, "claim_type": claim.claim_type, "use": claim.use,
        "quantity": retirement.quantity, "retired_at": retirement.created_on.isoformat(),
        "blocks": [block_resource(block) for block in retirement.blocks],
        "projects": sorted({block.project for block in retirement.blocks}),
        "certificate_url": url_for("retirements.RetirementCertificate",
                                   retirement_id=retirement.retirement_id),
        "proof_url": url_for("transparency.retirement_proof",
                             retirement_id=retirement.retirement_id),
        "registry_phase": retirement.registry_phase,
        "registry_serials": list(retirement.registry_serials),
        "registry_date": retirement.registry_date,
        "registry_failure": retirement.failure or None,
    }


def _confirmation(phase: dict | None) -> dict:
    """The serials and day Verra retired, from a row of ``registry_phases`` (None: none)."""
    on = phase and phase["date"]
    return {"registry_serials": phase["serials"] if phase else [],
            "registry_date": date.fromisoformat(on) if on else None}


def retired_for(retirement, organisation: str | None) -> bool:
    """Whether the organisation retired these credits: from its holding account, or from
    the escrow of one of its orders (retired at once on payment)."""
    if organisation is None:
        return False
    if retirement.account == current_user.account:
        return True
    try:
        holder = market().ledger.get_account(retirement.account)
    except UnknownAccountError:
        return False
    return holder.kind == ESCROW and holder.owner == organisation


@bp.route("")
class Retirements(MethodView):
    @bp.response(200, page_of(RetirementListItemSchema))
    @bp.paginate()
    def get(self, pagination_parameters):
        """The public registry: every retirement, newest first, with where each retirement
        of a mirrored project's serials stands at Verra."""
        view = read_view()
        rows = take_page(view.retirements(), pagination_parameters)
        phases = registry_phases(view, [row["retirement_id"] for row in rows])
        return [row | _confirmation(phases.get(row["retirement_id"])) for row in rows]

    @token_required(bp, "buyer")
    @bp.arguments(RetireSchema)
    @bp.response(201, RetirementSchema)
    @bp.refuses(400, 409)
    def post(self, asked):
        """Retires credits from your organisation's holdings, for good: ``tonnes`` (oldest
        vintage first) or exactly ``serials``, on the beneficiary's behalf."""
        key = asked.get("idempotency_key")
        serials = asked.get("serials")
        result = market().ledger.retire(
            current_user.account, claim_of(asked), quantity=asked.get("tonnes"),
            serials=SerialRange.parse(serials) if serials else None,
            idempotency_key=f"api:retire:{current_user.organisation}:{key}" if key else None)
        return retirement_resource(market().ledger.get_retirement(result["retirement_id"]))


@bp.route("/<retirement_id>")
class RetirementById(MethodView):
    @bp.response(200, RetirementSchema)
    @bp.refuses(404)
    def get(self, retirement_id: str):
        """One retirement: beneficiary, claim, serials retired, and where to check it."""
        return retirement_resource(market().ledger.get_retirement(retirement_id))


@bp.route("/<retirement_id>/certificate")
class RetirementCertificate(MethodView):
    @token_required(bp, "buyer", "operator", "auditor")
    @bp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
    @bp.refuses(404)
    def get(self, retirement_id: str):
        """The retirement's certificate (PDF), for the organisation that retired it."""
        from web.downloads import certificate_response

        retirement = market().ledger.get_retirement(retirement_id)
        if current_user.has_role("buyer") and not retired_for(retirement,
                                                              current_user.organisation):
            raise UnknownRetirementError(f"unknown retirement {retirement_id}")
        return certificate_response(market(), retirement.retirement_id)
