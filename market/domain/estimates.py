"""Footprint estimates: activities, their published emission factors, and the tonnes to offset.

The factors live in ``market/data/emission_factors.json`` with the publisher, year and
address of each; they are for estimates, not for greenhouse-gas inventories. Every quantity
and factor is an exact Decimal, so an estimate is the same on every machine.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Union

from ledger.domain.errors import InvalidInputError
from market.domain.errors import MarketError

FACTORS_FILE = "emission_factors.json"
MAX_QUANTITY = Decimal("1e12")  # a trillion kWh, km or litres: far beyond any one buyer
MAX_DECIMAL_PLACES = 9
MAX_FILE_BYTES = 2_000_000
MAX_ACTIVITIES = 10_000
HAULS = ("domestic", "short", "long")
CABINS = ("economy", "premium_economy", "business", "first")


class InvalidActivityError(MarketError, InvalidInputError):
    """An activity the estimator cannot use: a negative or non-finite quantity, a wrong type."""


class UnknownFactorError(InvalidActivityError):
    """No published factor for this country, haul, cabin, vehicle or fuel."""


class ActivityFileError(InvalidActivityError):
    """An activity file that cannot be read; the message starts with ``FILE:LINE:``."""

    def __init__(self, message: str, path: str, line: int | None = None):
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path, self.line = path, line


# --- Factors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a factor was published: cite ``name``, ``publisher`` and ``year``."""

    key: str
    name: str
    publisher: str
    year: int
    url: str


@dataclass(frozen=True)
class Factor:
    """kg CO2e per unit of an activity (``unit`` reads e.g. ``kgCO2e/kWh``)."""

    value: Decimal
    unit: str
    source: Source
    label: str
    note: str = ""


class EmissionFactors:
    """The factor table of the data file, looked up by activity."""

    def __init__(self, data: dict[str, Any]):
        self.note: str = data["note"]
        self.sources = {key: Source(key, s["name"], s["publisher"], s["year"], s["url"])
                        for key, s in data["sources"].items()}
        self.default_radiative_forcing: bool = data["defaults"]["flight_radiative_forcing"]
        self._data = data

    def electricity_countries(self) -> list[str]:
        """The countries whose grid has a factor, as ISO 3166-1 alpha-2 codes in order."""
        return sorted(self._data["electricity"])

    def _factor(self, entry: dict[str, Any], label: str) -> Factor:
        return Factor(Decimal(entry["value"]), entry["unit"], self.sources[entry["source"]],
                      entry.get("name", label), entry.get("note", ""))

    def _entry(self, table: str, key: str, what: str) -> dict[str, Any]:
        entries = self._data[table]
        if key not in entries:
            raise UnknownFactorError(f"no {what} factor for {key!r}: one of {', '.join(entries)}")
        return entries[key]

    def for_activity(self, activity: Activity) -> Factor:
        """The factor an activity is multiplied by; raises UnknownFactorError."""
        if isinstance(activity, Electricity):
            key = activity.country
            return self._factor(self._entry("electricity", key, "electricity"), key)
        if isinstance(activity, Flight):
            by_cabin = self._entry("flights", activity.haul, "flight haul")
            if activity.cabin not in by_cabin:
                raise UnknownFactorError(
                    f"no flight factor for cabin {activity.cabin!r}: one of {', '.join(by_cabin)}"
                )
            rf = "with_rf" if activity.radiative_forcing else "without_rf"
            label = f"{activity.haul}-haul flight, {activity.cabin}, {rf.replace('_', ' ')}"
            return self._factor(by_cabin[activity.cabin][rf], label)
        if isinstance(activity, Freight):
            key = activity.vehicle
            return self._factor(self._entry("freight", key, "freight vehicle"), key)
        if isinstance(activity, Fuel):
            return self._factor(self._entry("fuels", activity.fuel, "fuel"), activity.fuel)
        if isinstance(activity, NaturalGas):
            return self._factor(self._data["natural_gas"], "natural gas")
        raise InvalidActivityError(f"not an activity: {type(activity).__name__}")


@functools.cache
def load_factors() -> EmissionFactors:
    """The packaged factor table (read once). JSON numbers become exact Decimals."""
    text = files("market").joinpath("data", FACTORS_FILE).read_text(encoding="utf-8")
    return EmissionFactors(json.loads(text, parse_float=Decimal))


# --- Activities ----------------------------------------------------------------------------


def _quantity(name: str, value: object) -> Decimal:
    """A finite, non-negative Decimal with at most MAX_DECIMAL_PLACES places; floats refused."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidActivityError(
            f"{name} must be a Decimal or an int, not {type(value).__name__} {value!r}"
        )
    value = Decimal(value)
    if not value.is_finite():
        raise InvalidActivityError(f"{name} must be a finite number, not {value}")
    if value < 0:
        raise InvalidActivityError(f"{name} may not be negative: {value}")
    if value > MAX_QUANTITY:
        raise InvalidActivityError(f"{name} {value} is more than {MAX_QUANTITY:,f}")
    if value.normalize().as_tuple().exponent < -MAX_DECIMAL_PLACES:
        raise InvalidActivityError(f"{name} has more than {MAX_DECIMAL_PLACES} decimal places")
    return value.copy_abs() if value.is_zero() else value


def _key(value: object, what: str) -> str:
    """``"Premium economy"`` -> ``"premium_economy"``: case and separators do not matter."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidActivityError(f"{what} must be a name, not {value!r}")
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def _set(record: object, **values: object) -> None:
    for name, value in values.items():
        object.__setattr__(record, name, value)


@dataclass(frozen=True)
class Electricity:
    """Grid electricity used in a country (ISO 3166 alpha-2, or ``WORLD``)."""

    kwh: Decimal
    country: str

    def __post_init__(self) -> None:
        country = _key(self.country, "country").upper()
        _set(self, kwh=_quantity("kwh", self.kwh), country="GB" if country == "UK" else country)


@dataclass(frozen=True)
class Flight:
    """Passenger-km flown; ``haul`` is domestic, short (under 3700 km) or long."""

    passenger_km: Decimal
    haul: str
    cabin: str = "economy"
    radiative_forcing: bool = True

    def __post_init__(self) -> None:
        haul = _key(self.haul, "haul").removesuffix("_haul")
        if not isinstance(self.radiative_forcing, bool):
            raise InvalidActivityError("radiative_forcing is True or False")
        _set(self, passenger_km=_quantity("passenger_km", self.passenger_km), haul=haul,
             cabin=_key(self.cabin, "cabin"))

    @classmethod
    def trip(cls, distance_km: Decimal, passengers: int, haul: str, cabin: str = "economy",
             radiative_forcing: bool = True) -> Flight:
        """A trip of ``passengers`` people, each flying ``distance_km``."""
        if isinstance(passengers, bool) or not isinstance(passengers, int) or passengers < 1:
            raise InvalidActivityError(
                f"passengers must be a whole number from 1, not {passengers!r}"
            )
        distance = _quantity("distance_km", distance_km)
        return cls(distance * passengers, haul, cabin, radiative_forcing)


@dataclass(frozen=True)
class Freight:
    """Goods moved by road: tonnes carried times km driven."""

    tonne_km: Decimal
    vehicle: str = "hgv"

    def __post_init__(self) -> None:
        _set(self, tonne_km=_quantity("tonne_km", self.tonne_km),
             vehicle=_key(self.vehicle, "vehicle"))


@dataclass(frozen=True)
class Fuel:
    """Litres of a liquid fuel burnt: petrol, diesel or LPG."""

    litres: Decimal
    fuel: str

    def __post_init__(self) -> None:
        _set(self, litres=_quantity("litres", self.litres), fuel=_key(self.fuel, "fuel"))


@dataclass(frozen=True)
class NaturalGas:
    """Cubic metres of natural gas burnt."""

    cubic_metres: Decimal

    def __post_init__(self) -> None:
        _set(self, cubic_metres=_quantity("cubic_metres", self.cubic_metres))


Activity = Union[Electricity, Flight, Freight, Fuel, NaturalGas]


def quantity_of(activity: Activity) -> Decimal:
    """The amount an activity's factor is multiplied by."""
    if isinstance(activity, Electricity):
        return activity.kwh
    if isinstance(activity, Flight):
        return activity.passenger_km
    if isinstance(activity, Freight):
        return activity.tonne_km
    if isinstance(activity, Fuel):
        return activity.litres
    if isinstance(activity, NaturalGas):
        return activity.cubic_metres
    raise InvalidActivityError(f"not an activity: {type(activity).__name__}")


# --- Estimate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimateLine:
    activity: Activity
    kg_co2e: Decimal
    factor: Factor


@dataclass(frozen=True)
class Estimate:
    """kg CO2e per activity, their exact total, and the whole tonnes that offset it."""

    lines: tuple[EstimateLine, ...]
    total_kg: Decimal
    tonnes: int


def tonnes_to_offset(total_kg: Decimal) -> int:
    """Whole tonnes covering ``total_kg``: rounded up, so any positive total needs at least 1."""
    return int(total_kg.scaleb(-3).to_integral_value(rounding=ROUND_CEILING))


def estimate(activities: Iterable[Activity], factors: EmissionFactors | None = None) -> Estimate:
    """Multiplies each activity by its factor; raises UnknownFactorError or
    InvalidActivityError for an activity the table does not cover."""
    factors = factors or load_factors()
    lines = []
    # Wide enough that products and sums of bounded quantities are exact.
    with localcontext() as context:
        context.prec = 60
        for activity in activities:
            factor = factors.for_activity(activity)
            lines.append(EstimateLine(activity, quantity_of(activity) * factor.value, factor))
        total = sum((line.kg_co2e for line in lines), Decimal(0))
    return Estimate(tuple(lines), total, tonnes_to_offset(total))


# --- Activity files ------------------------------------------------------------------------

# The columns (CSV) or keys (JSON) each type of activity takes; "note" is free text, ignored.
FIELDS = {
    "electricity": ("kwh", "country"),
    "flight": ("passenger_km", "distance_km", "passengers", "haul", "cabin", "radiative_forcing"),
    "freight": ("tonne_km", "vehicle"),
    "fuel": ("litres", "fuel"),
    "natural_gas": ("cubic_metres",),
}
COLUMNS = ("type", "note", *dict.fromkeys(f for fields in FIELDS.values() for f in fields))
_TRUE, _FALSE = ("yes", "true", "1", "y"), ("no", "false", "0", "n")


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _NotANumber(name)


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidActivityError(f"{name} is not a number: {value!r}") from None
    return _quantity(name, value)


def _count(value: object, name: str) -> int:
    number = _number(value, name)
    if number != number.to_integral_value() or number < 1:
        raise InvalidActivityError(f"{name} must be a whole number from 1, not {value}")
    return int(number)


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidActivityError(f"{name} is yes or no, not {value!r}")


def activity_from_fields(fields: dict[str, Any]) -> Activity:
    """One activity from the fields of a CSV row or JSON object (blank cells left out)."""
    kind = _key(fields.get("type"), "type")
    if kind not in FIELDS:
        raise InvalidActivityError(f"unknown activity type {kind!r}: one of {', '.join(FIELDS)}")
    unused = sorted(set(fields) - {"type", "note", *FIELDS[kind]})
    if unused:
        raise InvalidActivityError(f"{', '.join(unused)} does not apply to {kind}")

    def need(name: str) -> Any:
        if name not in fields:
            raise InvalidActivityError(f"{kind} needs {name}")
        return fields[name]

    if kind == "electricity":
        return Electricity(_number(need("kwh"), "kwh"), need("country"))
    if kind == "flight":
        haul, cabin = need("haul"), fields.get("cabin", "economy")
        rf = _flag(fields.get("radiative_forcing", True), "radiative_forcing")
        if "passenger_km" in fields:
            if "distance_km" in fields or "passengers" in fields:
                raise InvalidActivityError("give passenger_km, or distance_km and passengers")
            return Flight(_number(fields["passenger_km"], "passenger_km"), haul, cabin, rf)
        passengers = _count(fields.get("passengers", "1"), "passengers")
        return Flight.trip(_number(need("distance_km"), "distance_km"), passengers, haul, cabin, rf)
    if kind == "freight":
        return Freight(_number(need("tonne_km"), "tonne_km"), fields.get("vehicle", "hgv"))
    if kind == "fuel":
        return Fuel(_number(need("litres"), "litres"), need("fuel"))
    return NaturalGas(_number(need("cubic_metres"), "cubic_metres"))


def _csv_rows(text: str, path: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ActivityFileError(f"unknown column {', '.join(map(repr, unknown))}: "
                                f"columns are {', '.join(COLUMNS)}", path, 1)
    if "type" not in header:
        raise ActivityFileError("the header needs a 'type' column", path, 1)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ActivityFileError(f"column {', '.join(map(repr, repeated))} appears twice", path, 1)
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:
            raise ActivityFileError("more cells than columns", path, reader.line_num)
        fields = {name: value for name, value in row.items() if value and value.strip()}
        if fields:
            rows.append((reader.line_num, fields))
    return rows


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _json_rows(text: str, path: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects of a top-level JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal,
                               parse_constant=_refuse_constant)

    def line_at(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def skip(index: int) -> int:
        return _WHITESPACE.match(text, index).end()

    index = skip(0)
    if text[index:index + 1] != "[":
        raise ActivityFileError("a JSON activity file is a list: [{\"type\": ...}, ...]",
                                path, line_at(index))
    rows, index = [], skip(index + 1)
    while text[index:index + 1] != "]":
        try:
            item, end = decoder.raw_decode(text, index)
        except _NotANumber as error:
            raise ActivityFileError(f"{error} is not a number", path, line_at(index)) from None
        except json.JSONDecodeError as error:
            raise ActivityFileError(f"not valid JSON: {error.msg}", path, error.lineno) from None
        if not isinstance(item, dict):
            raise ActivityFileError("each activity is an object: {\"type\": ...}",
                                    path, line_at(index))
        unknown = [name for name in item if name not in COLUMNS]
        if unknown:
            raise ActivityFileError(f"unknown key {', '.join(map(repr, unknown))}: "
                                    f"keys are {', '.join(COLUMNS)}", path, line_at(index))
        rows.append((line_at(index), {k: v for k, v in item.items() if v not in ("", None)}))
        index = skip(end)
        if text[index:index + 1] == ",":
            index = skip(index + 1)
        elif text[index:index + 1] != "]":
            raise ActivityFileError("expected ',' or ']' after an activity", path, line_at(index))
    if skip(index + 1) != len(text):
        raise ActivityFileError("text after the closing ']'", path, line_at(skip(index + 1)))
    return rows


def activities_from_file(path: str | Path,
                         factors: EmissionFactors | None = None) -> list[Activity]:
    """Reads activities from a ``.csv`` or ``.json`` file, for ``kapok market quote --estimate``.

    CSV: a header row, then one activity a row. Columns: ``type`` (electricity, flight,
    freight, fuel, natural_gas) and those its type takes; cells of other types stay blank::

        type,kwh,country,passenger_km,distance_km,passengers,haul,cabin,tonne_km,vehicle,litres,fuel
        electricity,12000,PE,,,,,,,,,
        flight,,,,5800,2,long,business,,,,
        flight,,,1500,,,short,economy,,,,
        freight,,,,,,,,4200,hgv,,
        fuel,,,,,,,,,,800,diesel

    JSON: a list of objects with the same keys; numbers may be JSON numbers or strings::

        [{"type": "electricity", "kwh": 12000, "country": "PE"},
         {"type": "flight", "distance_km": 5800, "passengers": 2, "haul": "long",
          "cabin": "business", "radiative_forcing": false},
         {"type": "natural_gas", "cubic_metres": "350.5"}]

    Fields: electricity ``kwh``, ``country`` (ISO-2 or WORLD); flight ``haul`` (domestic,
    short, long), ``cabin`` (economy, premium_economy, business, first; default economy),
    ``passenger_km`` or ``distance_km`` with ``passengers`` (default 1), ``radiative_forcing``
    (yes/no, default yes); freight ``tonne_km``, ``vehicle`` (hgv, hgv_rigid,
    hgv_articulated, van, van_diesel; default hgv); fuel ``litres``, ``fuel`` (petrol,
    diesel, lpg); natural_gas ``cubic_metres``. A ``note`` column or key is ignored.

    Raises ActivityFileError, its message starting ``FILE:LINE:``, for an unreadable or
    empty file, an unknown column or key, a missing field, a negative, NaN or malformed
    number, or a country, haul, cabin, vehicle or fuel without a factor.
    """
    name = str(path)
    factors = factors or load_factors()
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise ActivityFileError(f"larger than {MAX_FILE_BYTES:,} bytes", name)
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ActivityFileError(f"cannot read the file: {error.strerror}", name) from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's CSV may start with a BOM
    except UnicodeDecodeError:
        raise ActivityFileError("not UTF-8 text", name) from None
    if not text.strip():
        raise ActivityFileError("the file is empty", name, 1)
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ActivityFileError(f"unknown file type {suffix or '(none)'!r}: .csv or .json", name)
    rows = _csv_rows(text, name) if suffix == ".csv" else _json_rows(text, name)
    if not rows:
        raise ActivityFileError("no activities in the file", name, 1)
    if len(rows) > MAX_ACTIVITIES:
        raise ActivityFileError(f"more than {MAX_ACTIVITIES:,} activities", name)
    activities = []
    for line, fields in rows:
        try:
            activity = activity_from_fields(fields)
            factors.for_activity(activity)  # an unknown country is named with its line
        except InvalidActivityError as error:
            raise ActivityFileError(str(error), name, line) from None
        activities.append(activity)
    return activities
