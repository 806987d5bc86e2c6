"""The market's domain errors: each names what was wrong and the offending id or value."""

from __future__ import annotations

from ledger.domain.errors import ConflictError, InvalidInputError, NotFoundError


class MarketError(Exception):
    """Base of every error the market raises for a command or input it refuses."""


class InvalidMoneyError(MarketError, InvalidInputError):
    """An amount that is not finite, negative where it may not be, malformed or too precise."""


class UnknownCurrencyError(InvalidMoneyError):
    pass


class CurrencyMismatchError(InvalidMoneyError):
    """Amounts in two currencies were added, subtracted or booked together."""


class InvalidAllocationError(MarketError, InvalidInputError):
    """A total or weights that cannot be shared out (negative, or all weights zero)."""


class InvalidRuleError(MarketError, InvalidInputError):
    pass


class NoRuleInForceError(MarketError, InvalidInputError):
    """A benefit-sharing rule was asked for a moment before its first version."""


class InvalidFarmError(MarketError, InvalidInputError):
    pass


class UnknownFarmError(MarketError, NotFoundError):
    pass


class UnknownRecipientError(MarketError, NotFoundError):
    pass


class InvalidSaleError(MarketError, InvalidInputError):
    pass


class SaleAlreadyRecordedError(MarketError, ConflictError):
    """The order's proceeds are booked already: a retry, safe to treat as done."""

    def __init__(self, message: str, order_id: str):
        super().__init__(message)
        self.order_id = order_id


class InvalidPayoutError(MarketError, InvalidInputError):
    pass


class OverpaidError(InvalidPayoutError, ConflictError):
    """A payout larger than what is owed to the recipient or farm."""


class PayoutAlreadyRecordedError(InvalidPayoutError, ConflictError):
    """A payout with this reference was already booked for this recipient or farm."""
