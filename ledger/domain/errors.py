"""The ledger's domain errors: each names what was wrong and the offending id."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises for a command it refuses."""


class InvalidQuantityError(LedgerError):
    pass


class InvalidSerialError(LedgerError):
    pass


class InvalidCommandError(LedgerError):
    """A field of a command is missing or malformed (beneficiary, reason, year ...)."""


class InsufficientCreditsError(LedgerError):
    pass


class SerialsNotHeldError(InsufficientCreditsError):
    def __init__(self, message: str, missing: int | None = None):
        super().__init__(message)
        self.missing = missing


class CreditsAlreadyRetiredError(SerialsNotHeldError):
    pass


class CreditsCancelledError(SerialsNotHeldError):
    pass


class NotFoundError(LedgerError):
    pass


class UnknownProjectError(NotFoundError):
    pass


class UnknownVintageError(NotFoundError):
    pass


class UnknownAccountError(NotFoundError):
    pass


class UnknownRetirementError(NotFoundError):
    pass


class NotYetSignedError(NotFoundError):
    """The event is recorded but no signed tree head covers it yet: the audit log's follower
    (the background worker) signs the next head within minutes."""


class SerialNotFoundError(NotFoundError):
    pass


class DuplicateError(LedgerError):
    """Something with this id already exists."""


class IdempotencyConflictError(LedgerError):
    """The idempotency key was used before for a different command."""


class AccountKindError(LedgerError):
    """The account may not take part in this movement (e.g. trading out of the buffer pool)."""


class ConcurrencyError(LedgerError):
    """Other writers kept changing the same accounts; the command was not applied."""
