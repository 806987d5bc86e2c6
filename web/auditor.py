"""The auditors' area (read-only): events, balances at a moment, tree heads, verify, exports,
and every reconciliation of a mirrored project with Verra.

Auditors only: operators run the registry, and the people who check it are kept apart from
the people who change it. Nothing here writes to the store; ``verify`` is a POST only
because it is heavy work. Long work is capped (``AUDITOR_REPLAY_MAX_EVENTS``,
``AUDITOR_VERIFY_MAX_EVENTS``, ``AUDITOR_SCAN_LIMIT`` positions read per page of events); past
the caps the pages say so and point to ``kapok audit``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, StringField
from wtforms.validators import UUID, Length, NumberRange, Optional
from wtforms.widgets import DateTimeLocalInput

from ledger.audit.browse import (MAX_POSITION, SCAN_LIMIT, EventFilter, events_after,
                                 events_before, replay_at)
from ledger.audit.export import export_lines
from ledger.audit.keys import SigningKeyError, key_id, published_public_key
from ledger.audit.log import AuditLog
from ledger.read.registry_queries import registry_checks_page
from market.read.listing_audit import verify_with_listings
from web.auth import require
from web.consistency import read_view
from web.registry_reports import described_checks

bp = Blueprint("auditor", __name__, url_prefix="/auditor")

PAGE_LIMIT, MAX_PAGE_LIMIT = 50, 500
CHECKS_PER_PAGE = 20
EXPORTS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
FILTERS = ("topic", "originator", "since", "until", "first", "last", "limit")  # kept by paging


class MomentField(Field):
    """An ISO date and time (``2026-03-01T12:00``, ``...Z``, ``...-05:00``); UTC if no zone."""

    widget = DateTimeLocalInput()

    def _value(self) -> str:
        if self.data is not None:
            return self.data.strftime("%Y-%m-%dT%H:%M:%S")
        return self.raw_data[0] if self.raw_data else ""

    def process_formdata(self, valuelist) -> None:
        self.data = None
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            return
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            self.data = moment.astimezone(timezone.utc) if moment.tzinfo \
                else moment.replace(tzinfo=timezone.utc)
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
            raise ValueError(f"{text[:40]!r} is not a date and time, e.g. 2026-03-01T12:00") \
                from None


def position_field(label: str, minimum: int = 0) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(min=minimum, max=MAX_POSITION)])


class QueryForm(FlaskForm):
    """A GET form: read from the query string, no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False


class EventFilterForm(QueryForm):
    topic = StringField("Topic or aggregate type", validators=[Optional(), Length(max=200)],
                        description="part of the topic, e.g. Account. or Retired")
    originator = StringField("Originator id", validators=[Optional(), UUID()])
    since = MomentField("From time (UTC)", validators=[Optional()])
    until = MomentField("To time (UTC)", validators=[Optional()])
    first = position_field("From position", minimum=1)
    last = position_field("To position", minimum=1)
    after = position_field("After position")
    before = position_field("Before position", minimum=1)
    limit = IntegerField("Per page", default=PAGE_LIMIT,
                         validators=[Optional(), NumberRange(min=1, max=MAX_PAGE_LIMIT)])

    def event_filter(self) -> EventFilter:
        return EventFilter(topic=(self.topic.data or "").strip(),
                           originator_id=(self.originator.data or "").strip().lower(),
                           since=self.since.data, until=self.until.data,
                           first_position=self.first.data or 1,
                           last_position=self.last.data or MAX_POSITION)


class MomentForm(QueryForm):
    at = MomentField("Moment (UTC)", validators=[Optional()])
    position = position_field("or up to position")


class PageForm(QueryForm):
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1,
                                                                              max=1_000_000)])


class VerifyForm(FlaskForm):
    """Only the CSRF token: verify reads, but it is work nobody else should trigger."""


def _market():
    return current_app.extensions["kapok_market"]


def _public_key() -> bytes | None:
    try:
        return published_public_key()
    except SigningKeyError:
        return None


def _stored() -> int:
    return _market().recorder.max_notification_id() or 0


@bp.get("/")
@require("auditor")
def home():
    """The latest signed tree head, how much of the log it covers, and the way in."""
    public_pem = _public_key()
    return render_template("auditor/home.html", head=AuditLog(_market()).latest_head(),
                           stored=_stored(), public_pem=public_pem,
                           fingerprint=key_id(public_pem) if public_pem else None)


@bp.get("/events")
@require("auditor")
def events():
    """Every stored event, a page at a time, filtered."""
    form = EventFilterForm(formdata=request.args)
    if not form.validate():
        return render_template("auditor/events.html", form=form, page=None), 400
    where, limit = form.event_filter(), form.limit.data or PAGE_LIMIT
    scan_limit = current_app.config.get("AUDITOR_SCAN_LIMIT", SCAN_LIMIT)
    if form.before.data is not None:
        page = events_before(_market(), form.before.data, where, limit, scan_limit)
    else:
        page = events_after(_market(), form.after.data or 0, where, limit, scan_limit)
    filters = {name: request.args[name] for name in FILTERS if request.args.get(name, "").strip()}
    return render_template(
        "auditor/events.html", form=form, page=page, stored=_stored(),
        older=page.older and url_for(".events", **filters, before=page.older),
        newer=page.newer and url_for(".events", **filters, after=page.newer))


@bp.get("/balances")
@require("auditor")
def balances():
    """Every balance replayed from event 0 up to a chosen moment or position."""
    form = MomentForm(formdata=request.args)
    if not form.validate():
        return render_template("auditor/balances.html", form=form, result=None), 400
    cap = current_app.config.get("AUDITOR_REPLAY_MAX_EVENTS", 100_000)
    result = None
    if request.args:  # the form was sent (an empty one replays up to the latest event)
        result = replay_at(_market(), form.position.data, form.at.data, max_events=cap)
    return render_template("auditor/balances.html", form=form, result=result, cap=cap)


@bp.route("/verify", methods=["GET", "POST"])
@require("auditor")
def verify():
    """Recomputes every leaf, root and signature and the ledger's rules (see ``verify``)."""
    form = VerifyForm()
    log = AuditLog(_market())
    context = {"form": form, "head": log.latest_head(), "stored": _stored(), "report": None,
               "limit": current_app.config.get("AUDITOR_VERIFY_MAX_EVENTS", 200_000)}
    if request.method == "GET":
        return render_template("auditor/verify.html", **context)
    if not form.validate_on_submit():
        abort(400, description="the form has expired; reload the page and try again")
    if context["stored"] > context["limit"]:
        return render_template("auditor/verify.html", too_big=True, **context)
    public_pem = _public_key()
    if public_pem is None and context["head"] is not None:
        abort(503, description="no audit public key is configured (KAPOK_SIGNING_KEY_FILE), "
                               "so the signed tree heads cannot be checked")
    # Without a head there is no signature to check, so no key is needed; the page says
    # which events no head covers.
    context["report"] = verify_with_listings(_market(), public_pem or b"",
                                             require_checkpoint=False)
    return render_template("auditor/verify.html", **context)


@bp.get("/registry-checks")
@require("auditor")
def registry_checks():
    """Every reconciliation of a mirrored project with Verra's export, newest first, with
    each difference and what the run did about it."""
    form = PageForm(formdata=request.args)
    if not form.validate():
        abort(400, description="page must be a whole number from 1")
    number = form.page.data or 1
    runs, total = registry_checks_page(read_view(), CHECKS_PER_PAGE,
                                       (number - 1) * CHECKS_PER_PAGE)
    return render_template("auditor/registry_checks.html", runs=described_checks(runs),
                           total=total, number=number,
                           has_next=number * CHECKS_PER_PAGE < total)


@bp.get("/export.<fmt>")
@require("auditor")
def export(fmt: str):
    """The whole event log as JSON Lines or CSV, streamed as it is read."""
    if fmt not in EXPORTS:
        abort(404, description=f"no export as {fmt!r}: use .jsonl or .csv")
    market, upto = _market(), _stored()  # events stored later are not part of this file
    lines = (text for _, text in export_lines(market, fmt, until_position=upto))
    return Response(lines, mimetype=EXPORTS[fmt], headers={
        "Content-Disposition": f'attachment; filename="kapok-events-1-{upto}.{fmt}"',
        "Cache-Control": "no-store"})
