"""The price calculator's form: by tonnes, by an amount to spend, or by an emissions estimate,
and its translation into the arguments of ``Marketplace.quote``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, SelectField, StringField

from market.domain.estimates import CABINS, HAULS, InvalidActivityError, activity_from_fields
from market.domain.estimates import estimate as estimate_emissions
from market.domain.estimates import load_factors
from market.domain.errors import InvalidMoneyError
from market.domain.listings import MAX_TONNES
from market.domain.money import parse as parse_money

BY_TONNES, BY_AMOUNT, BY_ESTIMATE = "tonnes", "amount", "estimate"
MAX_FIELD = 40  # characters: no real quantity needs more


class QuoteInputError(ValueError):
    """What the buyer typed cannot be priced; the message says what to change."""


def grid_countries() -> list[str]:
    return load_factors().electricity_countries()


class QuoteForm(FlaskForm):
    by = RadioField("Price my purchase", default=BY_TONNES, choices=[
        SelectChoice(BY_TONNES, "By tonnes"), SelectChoice(BY_AMOUNT, "By a budget"),
        SelectChoice(BY_ESTIMATE, "By my emissions")])
    tonnes = StringField("Tonnes of CO2e")
    amount = StringField("Budget")
    electricity_kwh = StringField("Electricity used (kWh)")
    electricity_country = SelectField("Grid country", default="PE", choices=grid_countries)
    flight_passenger_km = StringField("Air travel (passenger-km)")
    flight_haul = SelectField("Flight length", default="long", choices=[
        SelectChoice(haul, f"{haul} haul") for haul in HAULS])
    flight_cabin = SelectField("Cabin", default="economy", choices=[
        SelectChoice(cabin, cabin.replace("_", " ")) for cabin in CABINS])
    freight_tonne_km = StringField("Road freight (tonne-km)")
    fuel_litres = StringField("Fuel burnt (litres)")
    fuel_type = SelectField("Fuel", default="diesel",
                            choices=[SelectChoice("diesel"), SelectChoice("petrol"),
                                     SelectChoice("lpg", "LPG")])


def _whole_tonnes(text: str | None) -> int:
    text = (text or "").strip().replace(",", "")
    if not text:
        raise QuoteInputError("enter how many tonnes you want to buy")
    if len(text) > MAX_FIELD or not text.lstrip("-").isdigit() or not text.isascii():
        raise QuoteInputError(f"tonnes must be a whole number, like 250, not {text[:MAX_FIELD]!r}")
    tonnes = int(text)
    if tonnes < 1:
        raise QuoteInputError(f"buy at least 1 tonne, not {tonnes}")
    if tonnes > MAX_TONNES:
        raise QuoteInputError(f"at most {MAX_TONNES:,} tonnes can be priced, not {tonnes:,}")
    return tonnes


def _activities(form: QuoteForm) -> list[dict]:
    """The activity fields the buyer filled in, as the estimator reads them."""
    filled = []
    rows = [
        ("electricity", "kwh", form.electricity_kwh, {"country": form.electricity_country.data}),
        ("flight", "passenger_km", form.flight_passenger_km,
         {"haul": form.flight_haul.data, "cabin": form.flight_cabin.data}),
        ("freight", "tonne_km", form.freight_tonne_km, {}),
        ("fuel", "litres", form.fuel_litres, {"fuel": form.fuel_type.data}),
    ]
    for kind, name, field, extra in rows:
        text = (field.data or "").strip().replace(",", "")
        if text:
            if len(text) > MAX_FIELD:
                raise QuoteInputError(f"{field.label.text}: at most {MAX_FIELD} characters")
            filled.append({"type": kind, name: text, **extra})
    if not filled:
        raise QuoteInputError("fill in at least one activity to estimate your emissions")
    return filled


def quote_request(form: QuoteForm, currency: str) -> dict:
    """The keyword arguments of ``Marketplace.quote`` for what the form asks (``tonnes``,
    ``amount`` or ``estimate``). Raises QuoteInputError with a message for the buyer."""
    if form.by.data == BY_TONNES:
        return {"tonnes": _whole_tonnes(form.tonnes.data)}
    if form.by.data == BY_AMOUNT:
        try:
            amount = parse_money(form.amount.data or "", currency)
        except InvalidMoneyError as error:
            raise QuoteInputError(f"budget: {error}") from None
        if not amount.amount:
            raise QuoteInputError("a budget must be more than 0")
        return {"amount": amount}
    if form.by.data == BY_ESTIMATE:
        try:
            activities = [activity_from_fields(fields) for fields in _activities(form)]
            return {"estimate": estimate_emissions(activities)}
        except InvalidActivityError as error:
            raise QuoteInputError(str(error)) from None
    raise QuoteInputError("choose how to price: by tonnes, by a budget or by your emissions")
