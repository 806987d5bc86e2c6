"""The operator console's forms: what an operator types, parsed strictly into exact values.

Numbers are read as a person writes them (``1250`` or ``12.50``), never through ``float``:
no signs unless a field allows them, no exponents, NaN or thousands commas, and no more
decimal places than the field takes. A value that does not parse is a field error (a 400),
so nothing reaches the ledger or the market.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timezone
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, DateTimeLocalField, EmailField, HiddenField,
                     PasswordField, SelectChoice, SelectField, StringField, TextAreaField)
from wtforms.validators import (DataRequired, Email, EqualTo, InputRequired, Length, Optional,
                                Regexp, ValidationError)

from ledger.domain.errors import InvalidSerialError
from ledger.domain.quantities import MAX_QUANTITY
from ledger.domain.retirements import MAX_TEXT
from ledger.domain.verra import parse_verra_serial
from ledger.domain.projects import FIRST_VINTAGE, PROJECT_TYPES, ProjectDetails, Vintage
from market.domain import money
from market.domain.errors import InvalidMoneyError
from market.domain.listings import LAST_VINTAGE, MAX_PRICE, MAX_PRICE_PLACES, PriceTier
from market.domain.proceeds import FarmDetails
from identity.domain import AUDITOR, MIN_PASSWORD, OPERATOR

CURRENCIES = tuple(money.CURRENCIES)
MAX_HECTARES = Decimal("100000000")
MAX_LINES = 20
CODE = Regexp(r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$",
              message="ASCII letters, digits and single '-' only")
RECIPIENT = Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
                   message="lower-case letters, digits and single '-' only")
CORRESPONDING_ADJUSTMENTS = ("Not Required", "Applied", "Pending")

_DECIMAL = re.compile(r"(?P<sign>-?)(?P<units>[0-9]{1,15})(?:\.(?P<fraction>[0-9]{1,30}))?",
                      re.ASCII)
_WHOLE = re.compile(r"[0-9]{1,20}", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9+][A-Za-z0-9 +.\-]{0,39}", re.ASCII)


# --- parsing (pure functions: ValueError names what is wrong) -----------------------------

def parse_decimal(text: str, *, places: int, low: Decimal, high: Decimal,
                  low_open: bool = False, signed: bool = False) -> Decimal:
    """``text`` as an exact Decimal within [low, high] (``(low, high]`` when ``low_open``)."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None or (match["sign"] and not signed):
        raise ValueError("write a number like 12 or 12.50 (no exponent or thousands commas"
                         + ("" if signed else ", not negative") + ")")
    if len(match["fraction"] or "") > places:
        raise ValueError(f"at most {places} decimal places")
    value = Decimal(match.group(0))
    if value < low or (low_open and value == low) or value > high:
        bound = "above" if low_open else "from"
        raise ValueError(f"must be {bound} {low:f} up to {high:,f}")
    return value


def parse_whole(text: str, *, low: int, high: int) -> int:
    """``text`` as a whole number from ``low`` to ``high``."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError("write a whole number of digits, like 1000")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"must be from {low:,} to {high:,}")
    return value


def _lines(text: str) -> list[list[str]]:
    lines = [line.split() for line in (text or "").splitlines() if line.strip()]
    if len(lines) > MAX_LINES:
        raise ValueError(f"at most {MAX_LINES} lines")
    return lines


def parse_tiers(text: str) -> list[PriceTier]:
    """Volume tiers, one ``min_tonnes price`` per line (``1000 12.50``)."""
    tiers = []
    for number, parts in enumerate(_lines(text), 1):
        if len(parts) != 2:
            raise ValueError(f"line {number}: write 'minimum tonnes' then 'price per tonne'")
        try:
            tiers.append(PriceTier(parse_whole(parts[0], low=1, high=MAX_QUANTITY),
                                   parse_decimal(parts[1], places=MAX_PRICE_PLACES,
                                                 low=Decimal(0), high=MAX_PRICE, low_open=True)))
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    return tiers


def parse_shares(text: str) -> dict[str, Decimal]:
    """Benefit shares, one ``recipient percent`` per line (``farmers 60``). Whether they sum to
    100 is the market's rule to check, so the operator reads its message."""
    shares: dict[str, Decimal] = {}
    for number, parts in enumerate(_lines(text), 1):
        if len(parts) != 2:
            raise ValueError(f"line {number}: write a recipient key then its percent")
        key, percent = parts
        if key in shares:
            raise ValueError(f"line {number}: {key} is listed twice")
        try:
            shares[key] = parse_decimal(percent, places=4, low=Decimal(0), high=Decimal(100),
                                        low_open=True)
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    if not shares:
        raise ValueError("give at least one recipient's share")
    return shares


def parse_labels(text: str) -> tuple[str, ...]:
    """Comma-separated labels such as ``CCB, CCP, SDG 13``, duplicates dropped."""
    labels = [label.strip() for label in (text or "").split(",") if label.strip()]
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(f"label {label[:40]!r}: letters, digits, spaces, '+', '.', '-' "
                             f"(40 at most)")
    if len(labels) > MAX_LINES:
        raise ValueError(f"at most {MAX_LINES} labels")
    return tuple(dict.fromkeys(labels))


def parse_verra_serials(text: str) -> list[str]:
    """Verra serial numbers, one per line (or separated by spaces or commas), as Verra prints
    them; each is read in full, so a mistyped part is named."""
    serials = []
    for part in re.split(r"[\s,]+", text or ""):
        if not part:
            continue
        try:
            serials.append(parse_verra_serial(part.upper()).text)
        except InvalidSerialError as error:
            raise ValueError(str(error)) from None
    if len(serials) > MAX_LINES:
        raise ValueError(f"at most {MAX_LINES} serial numbers")
    if not serials:
        raise ValueError("give the serial numbers Verra retired")
    return serials


def parse_sdgs(text: str) -> tuple[int, ...]:
    """Comma-separated UN Sustainable Development Goal numbers (1 to 17)."""
    numbers = [parse_whole(part, low=1, high=17)
               for part in (text or "").split(",") if part.strip()]
    return tuple(sorted(set(numbers)))


# --- fields --------------------------------------------------------------------------------

class ParsedField(StringField):
    """A text input whose ``data`` is the parsed value (None when empty or unparseable); the
    parse error becomes the field's error, and the input keeps what was typed."""

    def __init__(self, label=None, validators=None, *, parse, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.parse = parse

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and valuelist[0]:
            if not valuelist[0].strip():  # blank: an error unless the field is Optional
                raise ValueError("This field is required.")
            self.data = self.parse(valuelist[0])

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else str(self.data)


class ParsedTextArea(ParsedField):
    widget = TextAreaField.widget

    def _value(self):
        return self.raw_data[0] if self.raw_data else ""


def whole(low: int, high: int = MAX_QUANTITY):
    return lambda text: parse_whole(text, low=low, high=high)


def decimal(places: int, low: Decimal, high: Decimal, low_open: bool = False,
            signed: bool = False):
    return lambda text: parse_decimal(text, places=places, low=low, high=high,
                                      low_open=low_open, signed=signed)


def new_key() -> str:
    """A fresh idempotency key: submitting the same form twice does the work once."""
    return f"console:{uuid.uuid4().hex}"


class IdempotentForm(FlaskForm):
    key = HiddenField(default=new_key, validators=[InputRequired(), Length(max=80)])


# --- the forms -----------------------------------------------------------------------------

REQUIRED = InputRequired()


class ProjectForm(IdempotentForm):
    registry_id = StringField("Registry id", [REQUIRED, Length(max=40), CODE],
                              description="e.g. VCS-1067")
    name = StringField("Name", [REQUIRED, Length(max=300)])
    proponent = StringField("Proponent", [REQUIRED, Length(max=200)], default="AIDER")
    country = StringField("Country (ISO-2)", [REQUIRED, Regexp(r"^[A-Z]{2}$",
                          message="two capital letters, e.g. PE")], default="PE")
    region = StringField("Region", [REQUIRED, Length(max=200)], default="Madre de Dios")
    project_type = SelectField("Type", choices=PROJECT_TYPES)
    methodology = StringField("Methodology", [REQUIRED, Length(max=200)])
    area_ha = ParsedField("Area (ha)", [REQUIRED],
                          parse=decimal(4, Decimal(0), MAX_HECTARES, low_open=True))
    sdgs = ParsedField("SDGs", [Optional()], parse=parse_sdgs, description="e.g. 1, 8, 13, 15")
    labels = ParsedField("Labels", [Optional()], parse=parse_labels, description="e.g. CCB")
    latitude = ParsedField("Latitude", [Optional()],
                           parse=decimal(6, Decimal(-90), Decimal(90), signed=True))
    longitude = ParsedField("Longitude", [Optional()],
                            parse=decimal(6, Decimal(-180), Decimal(180), signed=True))
    buffer_percent = ParsedField("Buffer share (%)", [REQUIRED], default=Decimal(15),
                                 parse=decimal(2, Decimal(0), Decimal("99.99")))
    inventory_account = SelectField("Inventory account")
    description = TextAreaField("Description", [Optional(), Length(max=4000)])

    def details(self) -> ProjectDetails:
        return ProjectDetails(
            registry_id=self.registry_id.data.strip(), name=self.name.data.strip(),
            proponent=self.proponent.data.strip(), country=self.country.data,
            region=self.region.data.strip(), project_type=self.project_type.data,
            methodology=self.methodology.data.strip(), area_ha=self.area_ha.data,
            sdgs=self.sdgs.data or (), description=(self.description.data or "").strip(),
            labels=self.labels.data or (), latitude=self.latitude.data,
            longitude=self.longitude.data, buffer_percent=self.buffer_percent.data,
            inventory_account=self.inventory_account.data)


class VintageForm(IdempotentForm):
    year = ParsedField("Vintage year", [REQUIRED], parse=whole(FIRST_VINTAGE, LAST_VINTAGE))
    vintage_labels = ParsedField("Labels", [Optional()], parse=parse_labels,
                                 description="e.g. CCB, CCP, SDG 13")
    corresponding_adjustment = SelectField("Corresponding adjustment",
                                           choices=CORRESPONDING_ADJUSTMENTS)

    def vintage(self) -> Vintage:
        return Vintage(self.year.data, self.vintage_labels.data or (),
                       self.corresponding_adjustment.data)


class IssueForm(IdempotentForm):
    vintage = SelectField("Vintage", coerce=int, validate_choice=True)
    quantity = ParsedField("Tonnes to issue", [REQUIRED], parse=whole(1),
                           description="the project's buffer share goes to the buffer pool")


class FarmForm(IdempotentForm):
    project = SelectField("Project")
    farm_code = StringField("Farm code", [REQUIRED, Length(max=64), CODE],
                            description="e.g. COOP-006")
    farmer_name = StringField("Family name", [REQUIRED, Length(max=200)])
    forest_ha = ParsedField("Forest kept (ha)", [REQUIRED],
                            parse=decimal(4, Decimal(0), MAX_HECTARES))
    agroforestry_ha = ParsedField("Agroforestry (ha)", [REQUIRED],
                                  parse=decimal(4, Decimal(0), MAX_HECTARES))
    weight = ParsedField("Weight (optional)", [Optional()],
                         parse=decimal(6, Decimal(0), MAX_HECTARES),
                         description="replaces the agroforestry hectares in the farmers' split")

    def details(self) -> FarmDetails:
        return FarmDetails(self.farmer_name.data.strip(), self.forest_ha.data,
                           self.agroforestry_ha.data, self.weight.data)


class ListingForm(IdempotentForm):
    project = SelectField("Project")
    vintage = ParsedField("Vintage", [REQUIRED], parse=whole(FIRST_VINTAGE, LAST_VINTAGE))
    inventory_account = SelectField("Inventory account")
    price_per_tonne = ParsedField("Price per tonne", [REQUIRED],
                                  parse=decimal(MAX_PRICE_PLACES, Decimal(0), MAX_PRICE,
                                                low_open=True))
    currency = SelectField("Currency", choices=CURRENCIES)
    on_offer = ParsedField("Tonnes on offer", [REQUIRED], parse=whole(1))
    minimum_quantity = ParsedField("Minimum tonnes per order", [REQUIRED], default=1,
                                   parse=whole(1))
    tiers = ParsedTextArea("Volume tiers", [Optional()], parse=parse_tiers,
                           description="one 'minimum tonnes price' per line, e.g. 1000 12.50")

    def terms(self) -> dict:
        return {"project": self.project.data, "vintage": self.vintage.data,
                "inventory_account": self.inventory_account.data,
                "price_per_tonne": self.price_per_tonne.data, "currency": self.currency.data,
                "on_offer": self.on_offer.data, "minimum_quantity": self.minimum_quantity.data,
                "tiers": tuple(self.tiers.data or ()), "idempotency_key": self.key.data}


class ListingStatusForm(FlaskForm):
    status = SelectField("Status", choices=[SelectChoice("paused", "Pause"),
                                            SelectChoice("active", "Resume"),
                                            SelectChoice("closed", "Close")])


class OfferForm(FlaskForm):
    on_offer = ParsedField("Tonnes on offer", [REQUIRED], parse=whole(1))


class PriceForm(FlaskForm):
    price_per_tonne = ListingForm.price_per_tonne
    minimum_quantity = ListingForm.minimum_quantity
    tiers = ListingForm.tiers

    def terms(self) -> dict:
        return {"price_per_tonne": self.price_per_tonne.data,
                "minimum_quantity": self.minimum_quantity.data,
                "tiers": tuple(self.tiers.data or ())}


class ReservationCapsForm(FlaskForm):
    per_listing = ParsedField("Cap per listing (t)", [REQUIRED], parse=whole(1),
                              description="what one organisation may hold reserved on a listing "
                                          "without a cap of its own")
    per_organisation = ParsedField("Cap per organisation (t)", [REQUIRED], parse=whole(1),
                                   description="what one organisation may hold reserved on "
                                               "every listing together")


class ListingCapForm(FlaskForm):
    cap = ParsedField("Cap per organisation (t)", [Optional()], parse=whole(1),
                      description="empty: the marketplace's cap per listing")


class ReleaseForm(FlaskForm):
    note = StringField("Note (optional)", [Optional(), Length(max=300)],
                       description="kept with the order, after who released it")


class RuleForm(FlaskForm):
    project = SelectField("Project")
    shares = ParsedTextArea("Shares", [REQUIRED], parse=parse_shares,
                            description="one 'recipient percent' per line; they must sum to 100")
    effective_from = DateTimeLocalField("In force from (UTC)", [Optional()],
                                        format="%Y-%m-%dT%H:%M",
                                        description="empty: now; a future moment is allowed")

    def effective(self):
        moment = self.effective_from.data
        return moment.replace(tzinfo=timezone.utc) if moment else None


class PayoutForm(FlaskForm):
    currency = SelectField("Currency", choices=CURRENCIES)
    recipient = StringField("Recipient", [REQUIRED, Length(max=64), RECIPIENT],
                            description="e.g. farmers, aider-field-programme")
    farm_code = StringField("Farm code", [Optional(), Length(max=64), CODE],
                            description="only for the farmers' share")
    amount = StringField("Amount", [REQUIRED], description="in major units, e.g. 120.50")
    paid_on = DateField("Paid on", [REQUIRED])
    reference = StringField("Bank or transfer reference", [REQUIRED, Length(max=200)])

    def validate_amount(self, field) -> None:
        if self.currency.data not in CURRENCIES:
            return  # the currency field reports it
        try:
            minor = money.parse(field.data, self.currency.data).minor
        except InvalidMoneyError as error:
            raise ValidationError(str(error)) from None
        if minor <= 0:
            raise ValidationError("must be more than 0")

    def amount_minor(self) -> int:
        """The amount in the currency's minor units, exactly (validated already)."""
        return money.parse(self.amount.data, self.currency.data).minor


class ReasonForm(FlaskForm):
    reason = StringField("Reason", [REQUIRED, Length(max=500)])


class RefundForm(ReasonForm):
    recover_credits = BooleanField("Take the delivered credits back to the inventory",
                                   default=True, description=(
                                       "untick for a goodwill refund, or when the buyer has "
                                       "retired or passed on the credits"))


class ConfirmRetirementForm(FlaskForm):
    """Verra's confirmation of a pending retirement, as the operator reads it at Verra."""

    serials = ParsedTextArea("Verra serial number(s)", [REQUIRED], parse=parse_verra_serials,
                             description="of the block(s) Verra retired, one per line")
    retired_on = DateField("Retired at Verra on", [REQUIRED])

    def validate_retired_on(self, field) -> None:
        if field.data is not None and field.data > date.today():
            raise ValidationError("Verra cannot have retired them later than today")


class FailRetirementForm(FlaskForm):
    """Verra refused a pending retirement: the reason, then a second step to confirm."""

    reason = StringField("Why Verra refused it", [DataRequired(), Length(max=MAX_TEXT)])
    confirmed = HiddenField(validators=[Optional(), Regexp(r"^yes$")])


class UserForm(FlaskForm):
    email = EmailField("E-mail", [REQUIRED, Email(), Length(max=120)])
    name = StringField("Name", [REQUIRED, Length(max=120)])
    role = SelectField("Role", choices=(OPERATOR, AUDITOR))
    password = PasswordField("Password", [REQUIRED, Length(min=MIN_PASSWORD, max=1024)])
    confirm = PasswordField("Repeat the password",
                            [REQUIRED, EqualTo("password", message="passwords differ")])


# --- filters read from the query string (GET: no CSRF token) ------------------------------

class QueryForm(FlaskForm):
    class Meta:
        csrf = False

    page = ParsedField("Page", [Optional()], parse=whole(1, 1_000_000))


BALANCE_STATUSES = ("held", "buffer", "reserved", "retired", "cancelled")
ORDER_STATES = ("draft", "reserved", "paid", "fulfilled", "expired", "cancelled", "refunded")


def _any(choices) -> list[SelectChoice]:
    return [SelectChoice("", "any"), *map(SelectChoice, choices)]


class BalanceFilter(QueryForm):
    account = StringField("Account", [Optional(), Length(max=64)])
    project = StringField("Project", [Optional(), Length(max=40)])
    vintage = ParsedField("Vintage", [Optional()], parse=whole(FIRST_VINTAGE, LAST_VINTAGE))
    status = SelectField("Status", choices=_any(BALANCE_STATUSES), default="")


class OrderFilter(QueryForm):
    q = StringField("Order id", [Optional(), Length(max=40)])
    buyer = StringField("Buyer organisation", [Optional(), Length(max=40)])
    state = SelectField("State", choices=_any(ORDER_STATES), default="")


class StatementFilter(QueryForm):
    currency = SelectField("Currency", choices=CURRENCIES, default="USD")
    project = StringField("Project", [Optional(), Length(max=40)])
    recipient = StringField("Recipient", [Optional(), Length(max=64), RECIPIENT])
    farm = StringField("Farm code", [Optional(), Length(max=64), CODE])
    start = DateField("From", [Optional()])
    end = DateField("To", [Optional()])
