"""The market's domain errors: each names what was wrong and the offending id or value."""

from __future__ import annotations


class MarketError(Exception):
    """Base of every error the market raises for a command or input it refuses."""


class InvalidMoneyError(MarketError):
    """An amount that is not finite, negative where it may not be, malformed or too precise."""


class UnknownCurrencyError(InvalidMoneyError):
    pass


class CurrencyMismatchError(InvalidMoneyError):
    """Amounts in two currencies were added, subtracted or booked together."""


class InvalidAllocationError(MarketError):
    """A total or weights that cannot be shared out (negative, or all weights zero)."""


class InvalidRuleError(MarketError):
    pass


class NoRuleInForceError(MarketError):
    """A benefit-sharing rule was asked for a moment before its first version."""


class InvalidFarmError(MarketError):
    pass


class UnknownFarmError(MarketError):
    pass


class UnknownRecipientError(MarketError):
    pass


class InvalidSaleError(MarketError):
    pass


class SaleAlreadyRecordedError(MarketError):
    """The order's proceeds are booked already: a retry, safe to treat as done."""

    def __init__(self, message: str, order_id: str):
        super().__init__(message)
        self.order_id = order_id


class InvalidPayoutError(MarketError):
    pass


class OverpaidError(InvalidPayoutError):
    """A payout larger than what is owed to the recipient or farm."""


class PayoutAlreadyRecordedError(InvalidPayoutError):
    """A payout with this reference was already booked for this recipient or farm."""
