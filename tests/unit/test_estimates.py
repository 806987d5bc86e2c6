"""Rules of footprint estimates: the published factors, the arithmetic, the tonnes to offset,
and reading activities from CSV and JSON files."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.domain.errors import MarketError
from market.domain.estimates import (
    CABINS,
    HAULS,
    ActivityFileError,
    Electricity,
    Estimate,
    Flight,
    Freight,
    Fuel,
    InvalidActivityError,
    NaturalGas,
    UnknownFactorError,
    activities_from_file,
    estimate,
    load_factors,
    tonnes_to_offset,
)

COUNTRIES = ("PE", "US", "GB", "DE", "FR", "ES", "BR", "MX", "CO", "CL", "CN", "IN", "WORLD")


def written(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def file_error(path) -> ActivityFileError:
    with pytest.raises(ActivityFileError) as raised:
        activities_from_file(path)
    return raised.value


# --- The factor table ----------------------------------------------------------------------


def every_factor_entry(data: dict):
    """(where, entry) of every factor in the raw data file."""
    for table in ("electricity", "freight", "fuels"):
        for key, entry in data[table].items():
            yield f"{table}.{key}", entry
    for haul, cabins in data["flights"].items():
        for cabin, by_rf in cabins.items():
            for rf, entry in by_rf.items():
                yield f"flights.{haul}.{cabin}.{rf}", entry
    yield "natural_gas", data["natural_gas"]


def raw_data() -> dict:
    from importlib.resources import files

    text = files("market").joinpath("data", "emission_factors.json").read_text(encoding="utf-8")
    return json.loads(text, parse_float=Decimal)


def test_every_factor_has_a_positive_value_a_unit_and_a_published_source():
    data = raw_data()
    entries = list(every_factor_entry(data))

    assert len(entries) > 40
    for where, entry in entries:
        assert isinstance(entry["value"], Decimal) and entry["value"] > 0, where
        assert entry["unit"].startswith("kgCO2e/"), where
        assert entry["source"] in data["sources"], where


def test_every_source_names_its_publisher_year_and_address():
    for key, source in load_factors().sources.items():
        assert source.name and source.publisher, key
        assert 2020 <= source.year <= 2030, key
        assert source.url.startswith("https://"), key


def test_the_table_says_it_is_for_estimates_not_inventories():
    assert "not for greenhouse-gas inventories" in load_factors().note


@pytest.mark.parametrize("country", COUNTRIES)
def test_every_country_we_sell_to_has_a_grid_electricity_factor(country):
    factor = load_factors().for_activity(Electricity(Decimal(1), country))

    assert Decimal("0.01") < factor.value < Decimal("1")
    assert factor.unit == "kgCO2e/kWh"


def test_the_grid_countries_are_every_country_with_a_factor_in_order():
    factors = load_factors()
    countries = factors.electricity_countries()

    assert countries == sorted(countries) and set(COUNTRIES) <= set(countries)
    for country in countries:
        assert factors.for_activity(Electricity(Decimal(1), country)).unit == "kgCO2e/kWh"


@pytest.mark.parametrize("haul", HAULS)
@pytest.mark.parametrize("cabin", CABINS)
def test_every_haul_and_cabin_has_a_factor_and_radiative_forcing_raises_it(haul, cabin):
    factors = load_factors()
    with_rf = factors.for_activity(Flight(Decimal(1), haul, cabin))
    without_rf = factors.for_activity(Flight(Decimal(1), haul, cabin, radiative_forcing=False))

    assert with_rf.value > without_rf.value > 0
    assert with_rf.source.publisher.startswith("UK Department for Energy Security")


def test_flights_include_radiative_forcing_by_default_as_the_table_says():
    assert Flight(Decimal(1), "long").radiative_forcing is True
    assert load_factors().default_radiative_forcing is True


def test_a_combination_desnz_does_not_publish_says_which_factor_stands_in():
    factor = load_factors().for_activity(Flight(Decimal(1), "short", "first"))

    assert "business factor is used" in factor.note


@pytest.mark.parametrize(
    "activity, unit",
    [
        (Freight(Decimal(1), "hgv"), "kgCO2e/tonne-km"),
        (Freight(Decimal(1), "van"), "kgCO2e/tonne-km"),
        (Fuel(Decimal(1), "petrol"), "kgCO2e/litre"),
        (Fuel(Decimal(1), "diesel"), "kgCO2e/litre"),
        (Fuel(Decimal(1), "lpg"), "kgCO2e/litre"),
        (NaturalGas(Decimal(1)), "kgCO2e/m3"),
    ],
)
def test_freight_fuels_and_natural_gas_have_factors_in_their_own_units(activity, unit):
    assert load_factors().for_activity(activity).unit == unit


# --- Estimates -----------------------------------------------------------------------------


def test_an_estimate_multiplies_each_activity_by_its_factor_exactly():
    result = estimate([Electricity(Decimal(12000), "PE"), Fuel(Decimal(800), "diesel")])

    assert [line.kg_co2e for line in result.lines] == [Decimal("3020.88"), Decimal("2010.232")]
    assert result.total_kg == Decimal("5031.112")
    assert result.tonnes == 6


def test_each_line_names_the_factor_and_source_it_used():
    (line,) = estimate([Electricity(Decimal(100), "FR")]).lines

    assert line.factor.value == Decimal("0.05604")
    assert line.factor.source.publisher == "Ember"
    assert line.factor.label == "France"


def test_a_trip_counts_every_passenger():
    trip = Flight.trip(Decimal(5800), 2, "long", "business")

    assert trip == Flight(Decimal(11600), "long", "business")


def test_an_empty_estimate_offsets_nothing():
    assert estimate([]) == Estimate((), Decimal(0), 0)


@pytest.mark.parametrize(
    "total_kg, tonnes",
    [("0", 0), ("0.001", 1), ("999.999", 1), ("1000", 1), ("1000.001", 2), ("2500", 3)],
)
def test_tonnes_to_offset_round_up_so_a_positive_total_is_never_zero_tonnes(total_kg, tonnes):
    assert tonnes_to_offset(Decimal(total_kg)) == tonnes


quantities = st.decimals(min_value=0, max_value=10**7, places=3)
activities = st.one_of(
    st.builds(Electricity, quantities, st.sampled_from(COUNTRIES)),
    st.builds(Flight, quantities, st.sampled_from(HAULS), st.sampled_from(CABINS), st.booleans()),
    st.builds(Freight, quantities, st.sampled_from(["hgv", "hgv_rigid", "van", "van_diesel"])),
    st.builds(Fuel, quantities, st.sampled_from(["petrol", "diesel", "lpg"])),
    st.builds(NaturalGas, quantities),
)


@given(st.lists(activities, max_size=20))
def test_the_total_is_the_exact_sum_of_the_lines_and_the_tonnes_just_cover_it(items):
    result = estimate(items)

    assert result.total_kg == sum((line.kg_co2e for line in result.lines), Decimal(0))
    assert (result.tonnes - 1) * 1000 < result.total_kg <= result.tonnes * 1000 or (
        result.total_kg == result.tonnes == 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Electricity(Decimal(-1), "PE"),
        lambda: Electricity(Decimal("NaN"), "PE"),
        lambda: Electricity(Decimal("Infinity"), "PE"),
        lambda: Electricity(1.5, "PE"),
        lambda: Electricity(True, "PE"),
        lambda: Electricity(Decimal("1e13"), "PE"),
        lambda: Electricity(Decimal("0.0000000001"), "PE"),
        lambda: Flight.trip(Decimal(100), 0, "short"),
        lambda: Flight(Decimal(1), "short", radiative_forcing="no"),
        lambda: Fuel(Decimal(1), ""),
    ],
)
def test_negative_non_finite_inexact_or_absurd_quantities_are_refused(make):
    with pytest.raises(InvalidActivityError):
        make()


@pytest.mark.parametrize(
    "activity, named",
    [
        (Electricity(Decimal(1), "AQ"), "'AQ'"),
        (Flight(Decimal(1), "orbital"), "'orbital'"),
        (Flight(Decimal(1), "long", "cargo hold"), "'cargo_hold'"),
        (Freight(Decimal(1), "bicycle"), "'bicycle'"),
        (Fuel(Decimal(1), "kerosene"), "'kerosene'"),
    ],
)
def test_an_activity_without_a_published_factor_is_refused_by_name(activity, named):
    with pytest.raises(UnknownFactorError) as raised:
        estimate([activity])

    assert named in str(raised.value)
    assert isinstance(raised.value, MarketError)


def test_names_ignore_case_and_separators_and_uk_means_gb():
    assert Flight(Decimal(1), "Short-haul", "Premium Economy") == Flight(
        Decimal(1), "short", "premium_economy")
    assert Electricity(Decimal(1), "uk").country == "GB"


# --- Activity files ------------------------------------------------------------------------

CSV = """\
type,kwh,country,passenger_km,distance_km,passengers,haul,cabin,tonne_km,vehicle,litres,fuel
electricity,12000,PE,,,,,,,,,
flight,,,,5800,2,long,business,,,,
flight,,,1500,,,short,economy,,,,
freight,,,,,,,,4200,hgv,,
fuel,,,,,,,,,,800,diesel
"""

JSON = """\
[
  {"type": "electricity", "kwh": 12000, "country": "PE"},
  {"type": "flight", "distance_km": 5800, "passengers": 2, "haul": "long",
   "cabin": "business", "radiative_forcing": false},
  {"type": "natural_gas", "cubic_metres": "350.5", "note": "boiler"}
]
"""


def test_a_csv_file_gives_one_activity_a_row(tmp_path):
    assert activities_from_file(written(tmp_path, "a.csv", CSV)) == [
        Electricity(Decimal(12000), "PE"),
        Flight(Decimal(11600), "long", "business"),
        Flight(Decimal(1500), "short", "economy"),
        Freight(Decimal(4200), "hgv"),
        Fuel(Decimal(800), "diesel"),
    ]


def test_a_json_file_gives_one_activity_an_object(tmp_path):
    assert activities_from_file(written(tmp_path, "a.json", JSON)) == [
        Electricity(Decimal(12000), "PE"),
        Flight(Decimal(11600), "long", "business", radiative_forcing=False),
        NaturalGas(Decimal("350.5")),
    ]


def test_a_spreadsheet_csv_with_a_byte_order_mark_and_blank_lines_reads_the_same(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufefftype,kwh,country\r\nelectricity,10,PE\r\n\r\n").encode("utf-8"))

    assert activities_from_file(path) == [Electricity(Decimal(10), "PE")]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("type,kwh,country\nelectricity,1,PE\nelectricity,2,XX\n", 3, "'XX'"),
        ("type,kwh,country\nelectricity,-5,PE\n", 2, "may not be negative"),
        ("type,kwh,country\nelectricity,NaN,PE\n", 2, "finite"),
        ("type,kwh,country\nelectricity,1.000,5,PE\n", 2, "more cells than columns"),
        ("type,kwh,country\nelectricity,1;5,PE\n", 2, "not a number"),
        ("type,kwh,colour\nelectricity,1,red\n", 1, "unknown column 'colour'"),
        ("kwh,country\n1,PE\n", 1, "'type' column"),
        ("type,kwh,KWH,country\nelectricity,1,2,PE\n", 1, "'kwh' appears twice"),
        ("type,kwh,country\n", 1, "no activities"),
        ("type,kwh,country,litres\nelectricity,1,PE,4\n", 2, "litres does not apply"),
        ("type,kwh\nelectricity,1\n", 2, "needs country"),
        ("type,kwh\nteleport,1\n", 2, "unknown activity type"),
        ("type,passenger_km,distance_km,haul\nflight,10,10,short\n", 2, "or distance_km"),
        ("type,passenger_km,haul,cabin\nflight,10,short,hammock\n", 2, "'hammock'"),
        ("type,passenger_km,haul,radiative_forcing\nflight,10,short,maybe\n", 2, "yes or no"),
    ],
)
def test_a_bad_csv_row_is_named_by_its_line(tmp_path, text, line, message):
    error = file_error(written(tmp_path, "bad.csv", text))

    assert error.line == line
    assert str(error).startswith(f"{tmp_path / 'bad.csv'}:{line}: ")
    assert message in str(error)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('[\n {"type": "electricity", "kwh": 1, "country": "PE"},\n'
         ' {"type": "electricity", "kwh": 1, "country": "ZZ"}\n]', 3, "'ZZ'"),
        ('[\n {"type": "fuel", "litres": NaN, "fuel": "diesel"}\n]', 2, "NaN is not a number"),
        ('[\n {"type": "fuel", "litres": -2, "fuel": "diesel"}\n]', 2, "may not be negative"),
        ('[\n {"type": "fuel", "litres": 2, "fuel": "diesel", "colour": "red"}\n]', 2,
         "unknown key 'colour'"),
        ('{"type": "fuel"}', 1, "is a list"),
        ('[\n {"type": "fuel", "litres": 2,\n  "fuel": }\n]', 3, "not valid JSON"),
        ('[\n {"type": "fuel", "litres": 2, "fuel": "diesel"} {}\n]', 2, "expected ','"),
        ('[\n 3\n]', 2, "each activity is an object"),
        ('[]', 1, "no activities"),
        ('[{"type": "natural_gas", "cubic_metres": 1}] extra', 1, "after the closing"),
    ],
)
def test_a_bad_json_activity_is_named_by_the_line_it_starts_on(tmp_path, text, line, message):
    error = file_error(written(tmp_path, "bad.json", text))

    assert (error.line, message in str(error)) == (line, True), str(error)


@pytest.mark.parametrize("name, text", [("empty.csv", ""), ("blank.json", "  \n\n")])
def test_an_empty_file_is_refused(tmp_path, name, text):
    assert "empty" in str(file_error(written(tmp_path, name, text)))


def test_a_file_that_is_not_csv_or_json_or_not_there_is_refused(tmp_path):
    assert ".csv or .json" in str(file_error(written(tmp_path, "a.xlsx", "type\n")))
    assert "cannot read" in str(file_error(tmp_path / "missing.csv"))
