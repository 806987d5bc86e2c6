"""Rules of money: exact amounts, one currency at a time, rounded only when asked."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.domain.errors import CurrencyMismatchError, InvalidMoneyError, UnknownCurrencyError
from market.domain.money import CURRENCIES, Money, currency, parse

minor_units = st.integers(min_value=-10**15, max_value=10**15)
codes = st.sampled_from(sorted(CURRENCIES))


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


@pytest.mark.parametrize("code", ["USD", "EUR", "PEN"])
def test_kapok_accepts_dollars_euros_and_soles_with_two_minor_digits(code):
    assert currency(code).minor_digits == 2
    assert currency(code).minor_unit == Decimal("0.01")


@pytest.mark.parametrize("code", ["GBP", "usd", "", None])
def test_an_unknown_currency_is_refused(code):
    with pytest.raises(UnknownCurrencyError):
        Money(Decimal("1.00"), code)


def test_an_amount_is_made_from_minor_units_and_gives_them_back():
    price = Money.from_minor(1250, "USD")

    assert price.amount == Decimal("12.50")
    assert price.minor == 1250
    assert str(price) == "USD 12.50"


@given(minor_units, codes)
def test_minor_units_survive_the_round_trip_exactly(minor, code):
    assert Money.from_minor(minor, code).minor == minor


@pytest.mark.parametrize("amount", [1.5, "1.50", True, None])
def test_money_is_never_made_from_floats_text_or_bools(amount):
    with pytest.raises(InvalidMoneyError):
        Money(amount, "USD")


@pytest.mark.parametrize("minor", [12.5, True, "1250"])
def test_minor_units_must_be_an_int(minor):
    with pytest.raises(InvalidMoneyError):
        Money.from_minor(minor, "USD")


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_money_must_be_finite(amount):
    with pytest.raises(InvalidMoneyError):
        Money(Decimal(amount), "USD")


def test_an_int_amount_is_taken_as_whole_units():
    assert Money(12, "PEN") == Money.from_minor(1200, "PEN")


def test_amounts_with_more_precision_than_the_currency_have_no_minor_units_until_rounded():
    fee = usd("10.00") * Decimal("0.155")

    assert str(fee) == "USD 1.55000"
    assert fee.quantize().minor == 155
    with pytest.raises(InvalidMoneyError):
        usd("12.505").minor


@pytest.mark.parametrize(
    "amount, rounded",
    [("12.505", "12.51"), ("12.504", "12.50"), ("-12.505", "-12.51"), ("0.005", "0.01")],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount, rounded):
    assert usd(amount).quantize() == usd(rounded)


def test_quantize_takes_another_rounding_when_asked():
    assert usd("12.509").quantize(rounding=ROUND_DOWN) == usd("12.50")


def test_trailing_zeros_beyond_the_minor_unit_are_still_exact():
    assert usd("12.5000").minor == 1250


def test_amounts_add_and_subtract_within_one_currency():
    assert usd("12.50") + usd("0.75") == usd("13.25")
    assert usd("12.50") - usd("20.00") == usd("-7.50")
    assert -usd("1.00") == usd("-1.00")


def test_amounts_in_two_currencies_do_not_mix():
    with pytest.raises(CurrencyMismatchError):
        usd("1.00") + Money(Decimal("1.00"), "EUR")
    with pytest.raises(CurrencyMismatchError):
        usd("1.00") - Money(Decimal("1.00"), "PEN")


def test_money_multiplies_by_ints_and_decimals_from_either_side():
    assert usd("2.50") * 3 == usd("7.50")
    assert 3 * usd("2.50") == usd("7.50")
    assert usd("2.50") * Decimal("0.5") == usd("1.25")


@pytest.mark.parametrize("factor", [1.5, True, usd("2.00")])
def test_money_does_not_multiply_by_floats_bools_or_money(factor):
    with pytest.raises(TypeError):
        usd("2.50") * factor


def test_money_does_not_multiply_by_an_infinite_rate():
    with pytest.raises(InvalidMoneyError):
        usd("2.50") * Decimal("Infinity")


def test_arithmetic_never_rounds_silently():
    with pytest.raises(InvalidMoneyError):
        usd("1" * 40 + ".01") * Decimal("1." + "1" * 30)


@given(minor_units, minor_units, codes)
def test_adding_money_is_adding_minor_units(a, b, code):
    total = Money.from_minor(a, code) + Money.from_minor(b, code)

    assert total.minor == a + b


@pytest.mark.parametrize(
    "amount, text",
    [("12.5", "USD 12.50"), ("1000", "USD 1000.00"), ("1E+3", "USD 1000.00"),
     ("-0", "USD 0.00"), ("-7.5", "USD -7.50"), ("0.125", "USD 0.125")],
)
def test_money_prints_with_its_currency_and_at_least_the_minor_digits(amount, text):
    assert str(usd(amount)) == text


def test_zero_is_zero_minor_units():
    assert Money.zero("EUR").minor == 0
    assert str(Money.zero("EUR")) == "EUR 0.00"


@pytest.mark.parametrize(
    "text, minor",
    [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0.01", 1), ("  7.00 ", 700),
     ("1,000.00", 100000), ("1,234,567.89", 123456789), ("1000", 100000), ("0", 0)],
)
def test_typed_amounts_are_parsed_exactly(text, minor):
    assert parse(text, "USD") == Money.from_minor(minor, "USD")


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "Infinity", "inf", "-1.00", "-0", "", "  ", "abc", "12.50 USD", "$12.50",
     "12,50", "1,00.00", "1,0000", ",100", "12.", ".50", "1e3", "1_000", "+5", "12.505",
     "12.500", "١٢", "9" * 16],
)
def test_anything_but_a_plain_non_negative_amount_is_refused(text):
    with pytest.raises(InvalidMoneyError):
        parse(text, "USD")


def test_parsing_refuses_what_is_not_text():
    with pytest.raises(InvalidMoneyError):
        parse(12.5, "USD")


def test_parsing_needs_a_known_currency():
    with pytest.raises(UnknownCurrencyError):
        parse("12.50", "XYZ")


@given(st.integers(min_value=0, max_value=10**15), codes)
def test_what_money_prints_parses_back_to_the_same_money(minor, code):
    amount = Money.from_minor(minor, code)

    assert parse(str(amount).split(" ")[1], code) == amount


def test_amounts_for_people_group_thousands_and_keep_every_cent():
    from market.domain.money import Money

    assert Money.from_minor(300000, "USD").display() == "USD 3,000.00"
    assert Money.from_minor(-123456789, "PEN").display() == "PEN -1,234,567.89"
    assert str(Money.from_minor(300000, "USD")) == "USD 3000.00"  # files and CSV stay plain
