"""Rules of quotes: exact totals at the tier price, by tonnes, by an amount to spend and by a
footprint estimate, and every refusal named."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from market.domain.errors import CurrencyMismatchError, MarketError
from market.domain.estimates import Electricity, estimate
from market.domain.listings import Listing, ListingNotActiveError, NotEnoughAvailableError, PriceTier
from market.domain.money import Money
from market.domain.quotes import (
    BY_AMOUNT,
    BY_ESTIMATE,
    BY_TONNES,
    QUOTE_TTL,
    AmountTooSmallError,
    BelowMinimumQuantityError,
    InvalidQuoteRequestError,
    price_of,
    quote_amount,
    quote_estimate,
    quote_tonnes,
    total_minor,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def listing(price: str = "10.00", minimum: int = 1, tiers=(), on_offer: int = 1000,
            currency: str = "USD") -> Listing:
    return Listing.create(project_registry_id="VCS-1067", vintage_year=2021,
                          inventory_account="ecosphere-inventory",
                          price_per_tonne=Decimal(price), currency=currency,
                          minimum_quantity=minimum, tiers=tiers, on_offer=on_offer)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --- By tonnes -----------------------------------------------------------------------------


def test_a_quote_for_tonnes_is_the_tier_price_times_the_tonnes():
    offered = listing(tiers=[PriceTier(100, Decimal("9.00"))])

    quote = quote_tonnes(offered, 120, NOW)

    assert (quote.listing_id, quote.tonnes, quote.unit_price) == (offered.id, 120, Decimal("9.00"))
    assert (quote.total_minor, quote.currency, quote.asked_by) == (108000, "USD", BY_TONNES)
    assert quote.total == usd("1080.00")
    assert (quote.project_registry_id, quote.vintage_year) == ("VCS-1067", 2021)


def test_a_total_is_rounded_half_up_to_the_cent_once():
    # 3 x 12.345 = 37.035: one rounding gives 37.04 (rounding the price first would give 37.05)
    assert quote_tonnes(listing("12.345"), 3, NOW).total_minor == 3704
    assert quote_tonnes(listing("12.3449"), 3, NOW).total_minor == 3703


def test_a_quote_lasts_fifteen_minutes_unless_told_otherwise():
    default = quote_tonnes(listing(), 1, NOW)
    short = quote_tonnes(listing(), 1, NOW, ttl=timedelta(minutes=2))

    assert (default.created_at, default.expires_at) == (NOW, NOW + QUOTE_TTL)
    assert QUOTE_TTL == timedelta(minutes=15)
    assert short.expires_at == NOW + timedelta(minutes=2)
    assert not short.is_expired(NOW + timedelta(seconds=119))
    assert short.is_expired(NOW + timedelta(minutes=2))


def test_cannot_quote_fewer_tonnes_than_the_listings_minimum():
    with pytest.raises(BelowMinimumQuantityError) as raised:
        quote_tonnes(listing(minimum=10), 9, NOW)

    assert "at least 10 t" in str(raised.value)


def test_cannot_quote_more_tonnes_than_are_available():
    offered = listing(on_offer=50)
    offered.reserve(45)

    with pytest.raises(NotEnoughAvailableError) as raised:
        quote_tonnes(offered, 6, NOW)
    assert "5 t available" in str(raised.value)


@pytest.mark.parametrize("command", ["pause", "close"])
def test_cannot_quote_a_paused_or_closed_listing(command):
    offered = listing()
    getattr(offered, command)()

    with pytest.raises(ListingNotActiveError):
        quote_tonnes(offered, 1, NOW)
    with pytest.raises(ListingNotActiveError):
        quote_amount(offered, usd("100"), NOW)


@pytest.mark.parametrize(
    "tonnes, now, ttl",
    [
        (1.0, NOW, QUOTE_TTL),
        (True, NOW, QUOTE_TTL),
        ("3", NOW, QUOTE_TTL),
        (1, datetime(2024, 6, 1, 12, 0), QUOTE_TTL),
        (1, NOW, timedelta(0)),
        (1, NOW, 900),
    ],
)
def test_a_malformed_request_is_refused(tonnes, now, ttl):
    with pytest.raises(InvalidQuoteRequestError):
        quote_tonnes(listing(), tonnes, now, ttl=ttl)


def test_every_quote_error_is_a_market_error():
    for error in (InvalidQuoteRequestError, BelowMinimumQuantityError, AmountTooSmallError):
        assert issubclass(error, MarketError)


# --- By an amount to spend -----------------------------------------------------------------


def test_an_amount_buys_the_most_whole_tonnes_it_covers():
    quote = quote_amount(listing("12.50"), usd("100.00"), NOW)

    assert (quote.tonnes, quote.total_minor, quote.asked_by) == (8, 10000, BY_AMOUNT)


def test_an_amount_that_reaches_a_cheaper_tier_buys_more_tonnes_there():
    offered = listing("10.00", tiers=[PriceTier(100, Decimal("9.00"))])

    # 90 t at 10.00 cost 900.00, but 100 t at 9.00 cost 900.00 too, and 100 t is more.
    assert quote_amount(offered, usd("905.00"), NOW).tonnes == 100
    assert quote_amount(offered, usd("899.99"), NOW).tonnes == 89


def test_an_amount_is_capped_by_what_is_available():
    assert quote_amount(listing(on_offer=7), usd("1000000"), NOW).tonnes == 7


def test_an_amount_with_fractions_of_a_cent_spends_only_whole_cents():
    assert quote_amount(listing("0.333"), usd("0.999"), NOW).tonnes == 2  # 3 t cost 1.00


def test_an_amount_in_another_currency_is_refused():
    with pytest.raises(CurrencyMismatchError) as raised:
        quote_amount(listing(), Money(Decimal("100"), "EUR"), NOW)

    assert "priced in USD, not EUR" in str(raised.value)


def test_an_amount_below_the_minimum_quantitys_price_is_refused_saying_what_it_costs():
    with pytest.raises(AmountTooSmallError) as raised:
        quote_amount(listing("10.00", minimum=5), usd("49.99"), NOW)

    assert "minimum of 5 t costs USD 50.00" in str(raised.value)


@pytest.mark.parametrize("amount", [usd("0"), Decimal("100"), None])
def test_an_amount_is_positive_money(amount):
    with pytest.raises(InvalidQuoteRequestError):
        quote_amount(listing(), amount, NOW)


def test_an_amount_cannot_be_quoted_when_less_than_the_minimum_is_available():
    with pytest.raises(NotEnoughAvailableError):
        quote_amount(listing(minimum=10, on_offer=9), usd("1000"), NOW)


prices = st.integers(1, 5000).map(lambda tenths_of_cents: Decimal(tenths_of_cents).scaleb(-3))


@st.composite
def priced_listings(draw) -> Listing:
    """A listing with up to four tiers, each cheaper or as cheap, and up to 400 t available."""
    minimum, base = draw(st.integers(1, 20)), draw(prices)
    threshold, price, tiers = minimum, base, []
    for gap, cut in draw(st.lists(st.tuples(st.integers(1, 80), st.integers(0, 900)), max_size=4)):
        threshold, price = threshold + gap, max(Decimal("0.001"), price - Decimal(cut).scaleb(-3))
        tiers.append(PriceTier(threshold, price))
    return listing(str(base), minimum, tiers, on_offer=draw(st.integers(0, 400)))


@given(priced_listings(), st.integers(0, 300_000))
def test_an_amount_buys_the_most_tonnes_whose_total_stays_within_it(offered, budget_minor):
    costs = {q: price_of(offered, q)
             for q in range(offered.minimum_quantity, offered.available + 1)}
    affordable = [q for q, cost in costs.items() if cost <= budget_minor]
    assume(offered.available >= offered.minimum_quantity and budget_minor > 0)

    try:
        quote = quote_amount(offered, Money.from_minor(budget_minor, "USD"), NOW)
    except AmountTooSmallError:
        assert affordable == []
        return
    assert quote.tonnes == max(affordable)
    assert quote.total_minor <= budget_minor
    # One more tonne would cost too much, or there is none to buy.
    assert quote.tonnes == offered.available or costs[quote.tonnes + 1] > budget_minor


@given(st.integers(1, 10**6), st.integers(1, 10**9))
def test_a_total_is_the_exact_product_rounded_half_up_once(tonnes, price_in_thousandths):
    price = Decimal(price_in_thousandths).scaleb(-3)

    exact = Fraction(tonnes) * Fraction(price) * 100
    assert total_minor(tonnes, price, "USD") == floor(exact + Fraction(1, 2))


# --- By an estimate ------------------------------------------------------------------------


def test_an_estimate_is_quoted_for_the_whole_tonnes_that_offset_it():
    footprint = estimate([Electricity(Decimal(12000), "PE")])  # 3020.88 kg

    quote = quote_estimate(listing("15.00"), footprint, NOW)

    assert (quote.tonnes, quote.total_minor, quote.asked_by) == (4, 6000, BY_ESTIMATE)


def test_an_estimate_of_nothing_or_below_the_minimum_or_above_what_is_available_is_refused():
    with pytest.raises(BelowMinimumQuantityError):
        quote_estimate(listing(), estimate([]), NOW)
    with pytest.raises(BelowMinimumQuantityError):
        quote_estimate(listing(minimum=5), estimate([Electricity(Decimal(1000), "IN")]), NOW)
    with pytest.raises(NotEnoughAvailableError):
        quote_estimate(listing(on_offer=2), estimate([Electricity(Decimal(9000), "IN")]), NOW)
