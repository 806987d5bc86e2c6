"""Money: an exact Decimal amount in one of the currencies Kapok accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from market.domain.errors import CurrencyMismatchError, InvalidMoneyError, UnknownCurrencyError


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency and how many digits its minor unit has (2: cents, centimos)."""

    code: str
    minor_digits: int

    @property
    def minor_unit(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_digits)


CURRENCIES: dict[str, Currency] = {
    c.code: c for c in (Currency("USD", 2), Currency("EUR", 2), Currency("PEN", 2))
}

# Money arithmetic never rounds silently: wide enough for any real amount, and a result
# that would need rounding raises instead. Rounding happens only in Money.quantize.
_EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_ROUNDING = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])

# User input: "12", "12.5", "1000.00" or "1,000.00" (commas only as thousands separators).
_AMOUNT = re.compile(r"(?P<units>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<fraction>[0-9]+))?",
                     re.ASCII)
MAX_UNIT_DIGITS = 15  # a trillion and more: no order comes near it
MAX_TEXT = 64


def currency(code: str) -> Currency:
    """The currency with this ISO code; raises UnknownCurrencyError for any other."""
    try:
        return CURRENCIES[code]
    except (KeyError, TypeError):
        raise UnknownCurrencyError(
            f"unknown currency {code!r}: one of {', '.join(CURRENCIES)}"
        ) from None


def _exactly(operation, *operands: Decimal) -> Decimal:
    try:
        return operation(*operands)
    except DecimalException:
        raise InvalidMoneyError("amount too large to compute exactly") from None


@dataclass(frozen=True)
class Money:
    """An exact amount of one currency. ``amount`` may carry more digits than the currency
    (after multiplying by a rate); ``minor`` refuses such an amount until it is quantized."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        amount = self.amount
        if isinstance(amount, int) and not isinstance(amount, bool):
            amount = Decimal(amount)
        if not isinstance(amount, Decimal):
            raise InvalidMoneyError(
                f"money needs a Decimal or int amount, not {type(self.amount).__name__}"
            )
        if not amount.is_finite():
            raise InvalidMoneyError(f"money must be a finite amount, not {amount}")
        currency(self.currency)
        # -0 and 0 are the same money; print them the same.
        object.__setattr__(self, "amount", amount.copy_abs() if amount.is_zero() else amount)

    @classmethod
    def zero(cls, currency_code: str) -> Money:
        return cls(Decimal(0), currency_code).quantize()

    @classmethod
    def from_minor(cls, minor: int, currency_code: str) -> Money:
        """``from_minor(1250, "USD")`` is USD 12.50."""
        if not isinstance(minor, int) or isinstance(minor, bool):
            raise InvalidMoneyError(f"minor units are an int, not {type(minor).__name__}")
        digits = currency(currency_code).minor_digits
        return cls(_exactly(_EXACT.scaleb, Decimal(minor), Decimal(-digits)), currency_code)

    @property
    def minor(self) -> int:
        """The amount in minor units; raises InvalidMoneyError if it has more precision than
        the currency allows (quantize it first)."""
        digits = currency(self.currency).minor_digits
        scaled = _exactly(_EXACT.scaleb, self.amount, Decimal(digits))
        if scaled != scaled.to_integral_value():
            raise InvalidMoneyError(
                f"{self} has more than {digits} decimal places: quantize it first"
            )
        return int(scaled)

    def quantize(self, rounding: str = ROUND_HALF_UP) -> Money:
        """This amount rounded to the currency's minor unit: the one place money is rounded."""
        unit = currency(self.currency).minor_unit
        try:
            amount = self.amount.quantize(unit, rounding=rounding, context=_ROUNDING)
        except DecimalException:
            raise InvalidMoneyError(f"amount too large to round: {self.amount}") from None
        return Money(amount, self.currency)

    def _check_same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} and {other.currency} amounts"
            )

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other)
        return Money(_exactly(_EXACT.add, self.amount, other.amount), self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other)
        return Money(_exactly(_EXACT.subtract, self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: object) -> Money:
        # Floats are refused (TypeError): a rate must be an exact Decimal or an int.
        if isinstance(factor, bool) or not isinstance(factor, (int, Decimal)):
            return NotImplemented
        if isinstance(factor, Decimal) and not factor.is_finite():
            raise InvalidMoneyError(f"cannot multiply money by {factor}")
        return Money(_exactly(_EXACT.multiply, self.amount, Decimal(factor)), self.currency)

    __rmul__ = __mul__

    def __str__(self) -> str:
        """``USD 12.50``; an unquantized amount shows every digit it has (``USD 12.505``)."""
        return f"{self.currency} {self._shown():f}"

    def display(self) -> str:
        """For people: ``USD 3,000.00`` (thousands grouped; ``str`` stays plain for files)."""
        return f"{self.currency} {self._shown():,f}"

    def _shown(self) -> Decimal:
        # At least the currency's minor digits (12.5 -> 12.50), never fewer than it has.
        amount = self.amount
        unit = currency(self.currency).minor_unit
        if amount.as_tuple().exponent > unit.as_tuple().exponent:
            amount = _exactly(_EXACT.quantize, amount, unit)
        return amount


def parse(text: str, currency_code: str) -> Money:
    """Money from what a person typed: ``12.50``, ``12``, ``1000.00`` or ``1,000.00``.

    Raises InvalidMoneyError for anything else: negative amounts, NaN or Infinity, a decimal
    comma, more decimal places than the currency has, or absurdly many digits."""
    unit = currency(currency_code)
    if not isinstance(text, str):
        raise InvalidMoneyError(f"an amount to parse is text, not {type(text).__name__}")
    text = text.strip()
    if text.startswith("-"):
        raise InvalidMoneyError(f"amount may not be negative: {text[:MAX_TEXT]!r}")
    match = _AMOUNT.fullmatch(text) if len(text) <= MAX_TEXT else None
    if match is None:
        raise InvalidMoneyError(
            f"not an amount: {text[:MAX_TEXT]!r}; write it like 1250.00 or 1,250.00"
        )
    units = match["units"].replace(",", "")
    fraction = match["fraction"] or ""
    if len(units.lstrip("0")) > MAX_UNIT_DIGITS:
        raise InvalidMoneyError(f"amount too large: {text!r}")
    if len(fraction) > unit.minor_digits:
        raise InvalidMoneyError(
            f"{currency_code} has {unit.minor_digits} decimal places, {text!r} has {len(fraction)}"
        )
    return Money(Decimal(f"{units}.{fraction or '0'}"), currency_code).quantize()
