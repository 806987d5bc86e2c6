"""Quotes: what some tonnes of a listing cost, at the tier price for that quantity, for a while.

A total is exact: tonnes times the unit price, rounded half up to the currency's minor unit
once. Because volume tiers lower the price, buying more can cost less (99 t at 10.00 is
990.00, 100 t at 9.00 is 900.00); ``quote_amount`` searches every price band for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from math import ceil
from uuid import UUID

from ledger.domain.errors import InvalidInputError
from market.domain.errors import CurrencyMismatchError, MarketError
from market.domain.estimates import Estimate
from market.domain.listings import ACTIVE, Listing, ListingNotActiveError, NotEnoughAvailableError
from market.domain.money import Money, currency

QUOTE_TTL = timedelta(minutes=15)
BY_TONNES, BY_AMOUNT, BY_ESTIMATE = "tonnes", "amount", "estimate"


class QuoteError(MarketError, InvalidInputError):
    pass


class InvalidQuoteRequestError(QuoteError):
    """A quote was asked with a malformed quantity, amount, time or lifetime."""


class BelowMinimumQuantityError(QuoteError):
    """Fewer tonnes than the listing's minimum quantity."""


class AmountTooSmallError(BelowMinimumQuantityError):
    """The amount does not buy the listing's minimum quantity."""


@dataclass(frozen=True)
class Quote:
    """A price for ``tonnes`` of a listing, valid from ``created_at`` until ``expires_at``.
    ``asked_by`` says how the buyer asked: by tonnes, by an amount, or by an estimate."""

    listing_id: UUID
    project_registry_id: str
    vintage_year: int
    tonnes: int
    unit_price: Decimal
    total_minor: int
    currency: str
    created_at: datetime
    expires_at: datetime
    asked_by: str

    @property
    def total(self) -> Money:
        return Money.from_minor(self.total_minor, self.currency)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def total_minor(tonnes: int, unit_price: Decimal, currency_code: str) -> int:
    """``tonnes * unit_price`` in minor units, rounded half up once."""
    return (Money(unit_price, currency_code) * tonnes).quantize().minor


def price_of(listing: Listing, tonnes: int) -> int:
    """What ``tonnes`` of the listing cost, in minor units, at the tier price for them."""
    return total_minor(tonnes, listing.unit_price(tonnes), listing.currency)


def most_tonnes_for(listing: Listing, budget_minor: int) -> int:
    """The most tonnes, from the minimum quantity up to what is available, that cost at most
    ``budget_minor``; 0 if none do. Within one price band the total only grows with the
    tonnes, so the best of each band is found directly, and the best band wins."""
    scale = 10 ** currency(listing.currency).minor_digits
    breaks = listing.price_breaks()
    best = 0
    for index, (first, price) in enumerate(breaks):
        last = breaks[index + 1][0] - 1 if index + 1 < len(breaks) else listing.available
        first, last = max(first, listing.minimum_quantity), min(last, listing.available)
        # Half-up rounding keeps q * price * scale at or under the budget exactly when
        # q * price * scale < budget + 1/2: Fractions make that comparison exact.
        limit = (Fraction(budget_minor) + Fraction(1, 2)) / (Fraction(price) * scale)
        tonnes = min(last, ceil(limit) - 1)
        if tonnes >= first:
            best = max(best, tonnes)
    return best


def _check_request(listing: Listing, now: datetime, ttl: timedelta) -> None:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidQuoteRequestError(f"a quote needs an aware datetime, not {now!r}")
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise InvalidQuoteRequestError(f"a quote's lifetime must be positive, not {ttl!r}")
    if listing.status != ACTIVE:
        raise ListingNotActiveError(f"listing {listing.id} is {listing.status}: no quotes")


def _check_tonnes(listing: Listing, tonnes: int) -> None:
    if tonnes < listing.minimum_quantity:
        raise BelowMinimumQuantityError(
            f"listing {listing.id} sells at least {listing.minimum_quantity} t, not {tonnes}"
        )
    if tonnes > listing.available:
        raise NotEnoughAvailableError(
            f"listing {listing.id} has {listing.available} t available, not {tonnes}"
        )


def _quote(listing: Listing, tonnes: int, now: datetime, ttl: timedelta, asked_by: str) -> Quote:
    unit_price = listing.unit_price(tonnes)
    return Quote(listing.id, listing.project_registry_id, listing.vintage_year, tonnes,
                 unit_price, total_minor(tonnes, unit_price, listing.currency),
                 listing.currency, now, now + ttl, asked_by)


def quote_tonnes(listing: Listing, tonnes: int, now: datetime, *,
                 ttl: timedelta = QUOTE_TTL) -> Quote:
    """The price of ``tonnes``. Raises ListingNotActiveError, BelowMinimumQuantityError,
    NotEnoughAvailableError or InvalidQuoteRequestError."""
    _check_request(listing, now, ttl)
    if isinstance(tonnes, bool) or not isinstance(tonnes, int):
        raise InvalidQuoteRequestError(f"tonnes are a whole number, not {tonnes!r}")
    _check_tonnes(listing, tonnes)
    return _quote(listing, tonnes, now, ttl, BY_TONNES)


def quote_amount(listing: Listing, amount: Money, now: datetime, *,
                 ttl: timedelta = QUOTE_TTL) -> Quote:
    """The most whole tonnes that ``amount`` buys, at the tier price for that quantity;
    the total never exceeds the amount. Raises CurrencyMismatchError for an amount in
    another currency, AmountTooSmallError if it does not buy the minimum quantity,
    NotEnoughAvailableError if the listing has less than its minimum available."""
    _check_request(listing, now, ttl)
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise InvalidQuoteRequestError(f"an amount to spend is positive Money, not {amount!r}")
    if amount.currency != listing.currency:
        raise CurrencyMismatchError(
            f"listing {listing.id} is priced in {listing.currency}, not {amount.currency}"
        )
    if listing.available < listing.minimum_quantity:
        raise NotEnoughAvailableError(
            f"listing {listing.id} has {listing.available} t available, less than its "
            f"minimum of {listing.minimum_quantity} t"
        )
    # A budget with more digits than the currency can only spend whole minor units.
    tonnes = most_tonnes_for(listing, amount.quantize(ROUND_FLOOR).minor)
    if tonnes == 0:
        cheapest = Money.from_minor(price_of(listing, listing.minimum_quantity), listing.currency)
        raise AmountTooSmallError(
            f"{amount} buys no tonnes of listing {listing.id}: its minimum of "
            f"{listing.minimum_quantity} t costs {cheapest}"
        )
    return _quote(listing, tonnes, now, ttl, BY_AMOUNT)


def quote_estimate(listing: Listing, estimate: Estimate, now: datetime, *,
                   ttl: timedelta = QUOTE_TTL) -> Quote:
    """The price of the whole tonnes that offset an estimate; raises as quote_tonnes does."""
    _check_request(listing, now, ttl)
    if not isinstance(estimate, Estimate):
        raise InvalidQuoteRequestError(f"not an estimate: {estimate!r}")
    if estimate.tonnes == 0:
        raise BelowMinimumQuantityError("the estimate is 0 kg CO2e: there is nothing to offset")
    _check_tonnes(listing, estimate.tonnes)
    return _quote(listing, estimate.tonnes, now, ttl, BY_ESTIMATE)
