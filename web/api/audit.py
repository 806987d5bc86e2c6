"""The audit API: the event log page by page and a verification summary for auditors and
operators; the latest signed tree head and a retirement's inclusion proof for every token
holder, as /audit/ publishes them to anyone."""

from __future__ import annotations

from flask import abort
from flask.views import MethodView

from ledger.audit.export import event_fields
from ledger.audit.keys import SigningKeyError, load_public_key, public_key_file, signing_key_file
from ledger.audit.log import AuditLog, notification_leaf
from ledger.audit.proofs import retirement_proof
from market.read.listing_audit import verify_with_listings
from web.api.access import token_required
from web.api.pagination import ApiBlueprint, page_of
from web.api.schemas import (
    EventFilterSchema,
    EventSchema,
    InclusionProofSchema,
    TreeHeadSchema,
    VerifySummarySchema,
)
from web.api.services import market

bp = ApiBlueprint("audit", __name__, url_prefix="/api/v1/audit",
                  description="Read-only audit of the event log: the signed head and proofs for any "
                  "token, the events and verification for auditor or operator tokens.")
AUDIT_ROLES = ("auditor", "operator")
MAX_PROBLEMS = 100


def public_key() -> bytes | None:
    """The key that verifies the signed heads, if one is configured."""
    private = signing_key_file()
    published = public_key_file(private)
    try:
        return load_public_key(published if published.exists() else private)
    except SigningKeyError:
        return None


def event_row(app, notification) -> dict:
    event = app.mapper.to_domain_event(notification)
    return {
        "position": notification.id, "leaf_hash": notification_leaf(notification).hex(),
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version, "topic": notification.topic,
        "event": type(event).__qualname__, "timestamp": event.timestamp.isoformat(),
        "fields_": event_fields(event),
    }


@bp.route("/events")
class Events(MethodView):
    @token_required(bp, *AUDIT_ROLES)
    @bp.arguments(EventFilterSchema, location="query")
    @bp.response(200, page_of(EventSchema))
    @bp.paginate()
    def get(self, filters, pagination_parameters):
        """Stored events in log order, optionally of one ``topic`` and between positions
        ``from_position`` and ``to_position`` (inclusive)."""
        app, page = market(), pagination_parameters
        first, last = filters.get("from_position"), filters.get("to_position")
        topic = filters.get("topic")
        view = app.view
        page.item_count = view.count_events(first, last, topic)
        start = view.event_position_at(page.first_item, first, last, topic)
        if start is None:
            return []
        notifications = app.recorder.select_notifications(
            start=start, limit=page.page_size, stop=last, topics=(topic,) if topic else ())
        return [event_row(app, notification) for notification in notifications]


@bp.route("/tree-head")
class TreeHead(MethodView):
    @token_required(bp)  # public at /audit/tree-head: no role could be kept from it
    @bp.response(200, TreeHeadSchema)
    @bp.refuses(404)
    def get(self):
        """The latest signed tree head over the event log (with the public key)."""
        head = AuditLog(market()).latest_head()
        if head is None:
            abort(404, description="no signed tree head yet: the audit follower has not run")
        return head.as_dict(public_key())


@bp.route("/retirements/<retirement_id>/proof")
class RetirementProof(MethodView):
    @token_required(bp)  # public at /audit/proofs/<id>.json
    @bp.response(200, InclusionProofSchema)
    @bp.refuses(404)
    def get(self, retirement_id: str):
        """The retirement's event with its inclusion proof in the latest signed head,
        checkable with ledger/audit/verifier.py alone."""
        key = public_key()
        if key is None:
            abort(404, description="no signing key is configured")
        return retirement_proof(market().ledger, AuditLog(market()), retirement_id, key)


@bp.route("/verify")
class Verification(MethodView):
    @token_required(bp, *AUDIT_ROLES)
    @bp.response(200, VerifySummarySchema)
    @bp.refuses(404)
    def get(self):
        """Re-derives everything from the store: every event against the log, every signed
        head's and checkpoint's root and signature, the ledger's invariants and the listings'
        counters (one pass; slow on big stores). Returns the summary and the first problems."""
        key = public_key()
        if key is None:
            abort(404, description="no signing key is configured")
        report = verify_with_listings(market(), key).as_dict()
        return {**report, "problem_count": len(report["problems"]),
                "problems": report["problems"][:MAX_PROBLEMS]}
