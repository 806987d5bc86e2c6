"""The API's marshmallow schemas: what each resource reads and writes.

Money goes out as Decimal strings or integer minor units, never floats; tonnes are integers.
Input is checked here, so that a bad field is a 422 naming the field, before any service runs.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ledger.domain.errors import InvalidSerialError
from ledger.domain.retirements import CLAIM_TYPES, MAX_TEXT, USES, RetirementClaim
from ledger.domain.serials import SerialRange
from market.domain.errors import MarketError
from market.domain.estimates import activity_from_fields, estimate
from market.domain.listings import MAX_TONNES
from market.domain.money import CURRENCIES, parse

MAX_ACTIVITIES = 100


class Tonnes(fields.Integer):
    """Whole tonnes, from 1: a JSON integer only (no 1.5, no "5"; marshmallow's numbers refuse
    true and false too, see tests/contract/test_marshmallow.py)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.Range(min=1, max=MAX_TONNES), **kwargs)


Text = fields.String


def _money(metadata: dict | None = None, **kwargs) -> fields.Decimal:
    """A Decimal, written as a string so no client parses it as a float (and documented as
    one: a string of format ``decimal``, not a JSON number)."""
    return fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal",
                                                    **(metadata or {})}, **kwargs)


# --- projects and listings ----------------------------------------------------------------


class VintageSchema(Schema):
    year = fields.Integer(required=True)
    labels = fields.List(Text())
    corresponding_adjustment = Text()


class ProjectSchema(Schema):
    registry_id = Text(required=True)
    name = Text()
    proponent = Text()
    country = Text(metadata={"description": "ISO 3166-1 alpha-2"})
    region = Text()
    project_type = Text()
    methodology = Text()
    area_ha = _money(metadata={"description": "Hectares, as a decimal string."})
    sdgs = fields.List(fields.Integer())
    description = Text()
    labels = fields.List(Text())
    latitude = _money(allow_none=True)
    longitude = _money(allow_none=True)
    buffer_percent = _money(metadata={
        "description": "Share of each issuance set aside in the buffer pool, in percent."})
    registry = Text(metadata={"description": (
        "The registry of record: \"kapok\" (Kapok issues and numbers the credits) or "
        "\"verra\" (mirrored: Kapok holds, sells and retires Verra's own serial blocks, and "
        "a retirement is complete once Verra retires them too)."),
        "enum": ["kapok", "verra"]})
    registry_url = Text(allow_none=True, metadata={
        "description": "The project's public page at its registry of record; null when that "
                       "is Kapok."})
    vintages = fields.List(fields.Nested(VintageSchema))


class TierSchema(Schema):
    min_tonnes = fields.Integer()
    price_per_tonne = _money()


class ListingSchema(Schema):
    listing_id = Text(required=True)
    status = Text()
    project_registry_id = Text()
    project_name = Text()
    proponent = Text()
    country = Text()
    region = Text()
    project_type = Text()
    methodology = Text()
    sdgs = fields.List(fields.Integer())
    vintage_year = fields.Integer()
    labels = fields.List(Text())
    corresponding_adjustment = Text()
    buffer_percent = _money()
    price_per_tonne = _money()
    currency = Text()
    minimum_quantity = fields.Integer()
    tiers = fields.List(fields.Nested(TierSchema))
    on_offer = fields.Integer()
    reserved = fields.Integer()
    sold = fields.Integer()
    available = fields.Integer()


class ListingFilterSchema(Schema):
    project = Text(validate=validate.Length(1, 64))
    vintage = fields.Integer(validate=validate.Range(1990, 2100))


# --- quotes --------------------------------------------------------------------------------


class QuoteRequestSchema(Schema):
    """Exactly one of ``tonnes``, ``amount`` (with ``currency``) or ``activities``."""

    listing_id = fields.UUID(required=True)
    tonnes = Tonnes()
    amount = Text(metadata={"description": "Money to spend, as a decimal string: \"1250.00\"."})
    currency = Text(validate=validate.OneOf(list(CURRENCIES)))
    activities = fields.List(fields.Dict(), validate=validate.Length(1, MAX_ACTIVITIES),
                             metadata={"description": "Emissions activities, e.g. "
                                       "{\"type\": \"electricity\", \"kwh\": \"12000\", "
                                       "\"country\": \"PE\"}; quantities as strings or "
                                       "integers."})

    @validates_schema
    def one_way_of_asking(self, data, **kwargs):
        given = [name for name in ("tonnes", "amount", "activities") if name in data]
        if len(given) != 1:
            raise ValidationError("give exactly one of tonnes, amount or activities",
                                  "_schema")
        if "amount" in data and "currency" not in data:
            raise ValidationError("an amount needs its currency", "currency")

    @post_load
    def to_terms(self, data, **kwargs):
        """The amount as Money and the activities as an estimate, or 422 naming the field."""
        if "amount" in data:
            try:
                data["amount"] = parse(data["amount"], data["currency"])
            except MarketError as error:
                raise ValidationError(str(error), "amount") from None
            if data["amount"].amount <= 0:
                raise ValidationError("an amount to spend must be more than zero", "amount")
        if "activities" in data:
            activities, problems = [], {}
            for index, fields_ in enumerate(data["activities"]):
                try:
                    activities.append(activity_from_fields(fields_))
                except MarketError as error:
                    problems[index] = [str(error)]
            if problems:
                raise ValidationError({"activities": problems})
            try:
                data["estimate"] = estimate(activities)
            except MarketError as error:
                raise ValidationError(str(error), "activities") from None
        return data


class QuoteSchema(Schema):
    listing_id = Text()
    project_registry_id = Text()
    vintage_year = fields.Integer()
    tonnes = fields.Integer()
    unit_price = _money()
    total_minor = fields.Integer(metadata={"description": "The total in minor units (cents)."})
    total = Text(metadata={"description": "The total as a decimal string."})
    currency = Text()
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
    asked_by = Text(metadata={"description": "tonnes, amount or estimate"})
    estimate_kg_co2e = _money(allow_none=True)


# --- retirement claims, orders ----------------------------------------------------------------


class ClaimSchema(Schema):
    """On whose behalf and why credits are retired (the beneficiary becomes public)."""

    beneficiary = Text(required=True, validate=validate.Length(1, MAX_TEXT))
    reason = Text(required=True, validate=validate.Length(1, MAX_TEXT))
    details = Text(load_default="", validate=validate.Length(0, MAX_TEXT))
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    claim_type = Text(load_default="offset", validate=validate.OneOf(CLAIM_TYPES))
    use = Text(load_default="voluntary", validate=validate.OneOf(USES))

    @validates_schema
    def period_in_order(self, data, **kwargs):
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and start > end:
            raise ValidationError("the claimed period ends before it starts", "period_end")
        for name in ("beneficiary", "reason"):
            if name in data and not data[name].strip():
                raise ValidationError("may not be blank", name)


def claim_of(data: dict) -> RetirementClaim:
    return RetirementClaim(
        beneficiary=data["beneficiary"], reason=data["reason"], details=data["details"],
        period_start=data.get("period_start"), period_end=data.get("period_end"),
        claim_type=data["claim_type"], use=data["use"])


class OrderCreateSchema(Schema):
    listing_id = fields.UUID(required=True)
    tonnes = Tonnes(required=True)
    retire = fields.Nested(ClaimSchema, allow_none=True, metadata={
        "description": "Retire the tonnes at once on payment, with this claim."})
    idempotency_key = Text(validate=validate.Length(1, 100), metadata={
        "description": "A key of your choosing: a retry with it returns the same order."})


class OrderSchema(Schema):
    order_id = Text(required=True)
    state = Text()
    tonnes = fields.Integer()
    project = Text()
    vintage = fields.Integer()
    unit_price = _money()
    total_minor = fields.Integer()
    currency = Text()
    buyer_org = Text()
    buyer_account = Text()
    serials = fields.List(Text())
    reserved_until = Text(allow_none=True)
    payment_id = Text(allow_none=True)
    delivery_reference = Text(allow_none=True)
    retire = fields.Boolean()


class CardPaymentSchema(Schema):
    order_id = Text(required=True)
    provider = Text(metadata={"description": "The payment provider, e.g. stripe."})
    payment_id = Text(metadata={"description": "The provider's payment (a PaymentIntent)."})
    client_secret = Text(allow_none=True, metadata={
        "description": "For Stripe.js on your side; keep it private."})
    publishable_key = Text(allow_none=True, metadata={
        "description": "The site's Stripe publishable key, for Stripe.js."})
    amount_minor = fields.Integer()
    currency = Text()
    test_mode = fields.Boolean()


class AllocationSchema(Schema):
    recipient = Text(required=True, metadata={
        "description": "A recipient of the project's benefit-sharing rule."})
    farm_code = Text(allow_none=True, metadata={
        "description": "The farm, for a share of the farmers' part; null otherwise."})
    amount_minor = fields.Integer(metadata={"description": "The share in minor units (cents)."})
    amount = _money(metadata={"description": "The share in the order's currency."})


class OrderProceedsSchema(Schema):
    order_id = Text(required=True)
    project = Text()
    currency = Text()
    total_minor = fields.Integer()
    booked_on = Text(metadata={"description": "The day the payment settled (ISO 8601)."})
    refunded_on = Text(allow_none=True, metadata={
        "description": "The day the sale was refunded and its shares withdrawn, or null."})
    allocations = fields.List(fields.Nested(AllocationSchema), metadata={
        "description": "Who the order's money went to; the shares sum to the total."})


class OrderFilterSchema(Schema):
    state = Text(validate=validate.OneOf(
        ["draft", "reserved", "paid", "fulfilled", "expired", "cancelled", "refunded"]))


# --- holdings ------------------------------------------------------------------------------


class HoldingFilterSchema(Schema):
    account = Text(validate=validate.Length(1, 64), metadata={
        "description": "Operators only: whose holdings (default: every account)."})
    project = Text(validate=validate.Length(1, 64))
    vintage = fields.Integer(validate=validate.Range(1990, 2100))


class SerialBlockSchema(Schema):
    serial = Text(metadata={"description": (
        "The block's serial as its registry of record prints it: Kapok's "
        "(KAP-batch-first-last-project-vintage-country) or, for a mirrored project, Verra's "
        "(batch-first-last-VCS-VCU-...), the same through every split.")})
    batch = fields.Integer()
    first = fields.Integer()
    last = fields.Integer()
    quantity = fields.Integer()
    registry = Text(metadata={"description": "Whose serials these are: \"kapok\" or "
                                             "\"verra\".", "enum": ["kapok", "verra"]})


class HoldingSchema(Schema):
    account = Text()
    project = Text()
    vintage = fields.Integer()
    status = Text()
    quantity = fields.Integer()
    blocks = fields.List(fields.Nested(SerialBlockSchema))


# --- retirements ---------------------------------------------------------------------------


class RetireSchema(ClaimSchema):
    """Retire ``tonnes`` (oldest vintage first) or exactly ``serials`` from your holdings."""

    tonnes = Tonnes()
    serials = Text(validate=validate.Length(1, 120), metadata={
        "description": "FIRST-LAST, one serial number, a printed block serial, or a Verra "
                       "serial (a mirrored block's, or a part of one)."})
    idempotency_key = Text(validate=validate.Length(1, 100))

    @validates_schema
    def tonnes_or_serials(self, data, **kwargs):
        if ("tonnes" in data) == ("serials" in data):
            raise ValidationError("give either tonnes or serials", "_schema")
        if "serials" in data:
            try:
                SerialRange.parse(data["serials"])
            except InvalidSerialError as error:
                raise ValidationError(str(error), "serials") from None


_REGISTRY_PHASE = Text(allow_none=True, metadata={"description": (
    "Where a retirement of a mirrored project's serials stands at Verra, their registry of "
    "record: \"pending\" (locked in Kapok, not yet retired at Verra), \"confirmed\" (Verra "
    "retired them) or \"failed\" (Verra refused: the credits were returned). Null for "
    "Kapok's own serials, final at once."), "enum": ["pending", "confirmed", "failed", None]})
_REGISTRY_SERIALS = fields.List(Text(), metadata={
    "description": "The serials Verra retired, as Verra prints them, once confirmed; else "
                   "empty."})
_REGISTRY_DATE = fields.Date(allow_none=True, metadata={
    "description": "The day Verra retired them, once confirmed; else null."})


class RetirementSchema(Schema):
    retirement_id = Text(required=True)
    beneficiary = Text()
    reason = Text()
    details = Text()
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    claim_type = Text()
    use = Text()
    quantity = fields.Integer()
    retired_at = Text()
    blocks = fields.List(fields.Nested(SerialBlockSchema))
    projects = fields.List(Text())
    certificate_url = Text()
    proof_url = Text()
    registry_phase = _REGISTRY_PHASE
    registry_serials = _REGISTRY_SERIALS
    registry_date = _REGISTRY_DATE
    registry_failure = Text(allow_none=True, metadata={
        "description": "Why Verra refused the retirement, once failed; else null."})


class RetirementListItemSchema(Schema):
    retirement_id = Text(required=True)
    beneficiary = Text()
    reason = Text()
    quantity = fields.Integer()
    retired_at = Text()
    registry_phase = _REGISTRY_PHASE
    registry_serials = _REGISTRY_SERIALS
    registry_date = _REGISTRY_DATE


# --- audit ---------------------------------------------------------------------------------


class EventFilterSchema(Schema):
    topic = Text(validate=validate.Length(1, 200), metadata={
        "description": "Only events of this topic, e.g. ledger.domain.accounts:Account.Retired"})
    from_position = fields.Integer(validate=validate.Range(1, 2**62))
    to_position = fields.Integer(validate=validate.Range(1, 2**62))


class EventSchema(Schema):
    position = fields.Integer()
    leaf_hash = Text()
    originator_id = Text()
    originator_version = fields.Integer()
    topic = Text()
    event = Text()
    timestamp = Text()
    fields_ = fields.Dict(data_key="fields")


class TreeHeadSchema(Schema):
    tree_size = fields.Integer()
    root_hash = Text()
    timestamp_ms = fields.Integer()
    timestamp = Text()
    signature = Text()
    key_id = Text()
    last_position = fields.Integer()
    checkpoint = Text()
    public_key = Text()


class InclusionProofSchema(Schema):
    kind = Text()
    event = fields.Dict()
    leaf_hash = Text()
    inclusion_proof = fields.List(Text())
    tree_head = fields.Nested(TreeHeadSchema)


class VerifySummarySchema(Schema):
    ok = fields.Boolean()
    events = fields.Integer()
    logged = fields.Integer()
    heads_checked = fields.Integer()
    latest_head_size = fields.Integer()
    not_yet_logged = fields.Dict()
    problem_count = fields.Integer()
    problems = fields.List(fields.Dict(), metadata={"description": "The first 100 problems."})
