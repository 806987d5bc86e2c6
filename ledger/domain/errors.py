"""The ledger's domain errors, and the kinds every domain error of Kapok is one of: each error
names what was wrong and the offending id."""

from __future__ import annotations


# --- Kinds ----------------------------------------------------------------------------------
# What sort of refusal an error is. Every error class of the ledger, the market and identity
# names one kind among its bases, beside its package's base; the web and the command line
# answer by kind (ledger/error_codes.py), so renaming a class or rewording a message changes
# neither answer. A subclass may name another kind than its parent's: the nearest one counts.


class InvalidInputError(Exception):
    """The command or a value in it is malformed, or names something that may not take part."""


class NotFoundError(Exception):
    """The command names something that does not exist (yet)."""


class ConflictError(Exception):
    """The current state forbids the command: too few credits, an order paid already."""


class PaymentDeclinedError(Exception):
    """The buyer's payment was declined: the buyer's to fix, with another card."""


class UpstreamError(Exception):
    """A service Kapok depends on (the payment provider) failed: not the user's to fix."""


class UnavailableError(Exception):
    """Kapok cannot carry the command out now (its database does not answer): retry later."""


KINDS = (InvalidInputError, NotFoundError, ConflictError, PaymentDeclinedError, UpstreamError,
         UnavailableError)


def kind_of(error_class: type[BaseException]) -> type[Exception] | None:
    """The kind ``error_class`` names among its bases, or else its nearest ancestor does; None
    for a class of no kind (a package's base)."""
    for ancestor in error_class.__mro__:
        if ancestor in KINDS:
            return ancestor
        named = [base for base in ancestor.__bases__ if base in KINDS]
        if named:
            return named[0]
    return None


# --- The ledger's errors --------------------------------------------------------------------


class LedgerError(Exception):
    """Base of every error the ledger raises for a command it refuses."""


class InvalidQuantityError(LedgerError, InvalidInputError):
    pass


class InvalidSerialError(LedgerError, InvalidInputError):
    pass


class InvalidCommandError(LedgerError, InvalidInputError):
    """A field of a command is missing or malformed (beneficiary, reason, year ...)."""


class InsufficientCreditsError(LedgerError, ConflictError):
    pass


class SerialsNotHeldError(InsufficientCreditsError, InvalidInputError):
    """Serials the account does not hold were named: bad input, where asking for more tonnes
    than the account holds is a conflict with its balance."""

    def __init__(self, message: str, missing: int | None = None):
        super().__init__(message)
        self.missing = missing


class CreditsAlreadyRetiredError(SerialsNotHeldError, ConflictError):
    pass


class CreditsCancelledError(SerialsNotHeldError):
    pass


class UnknownProjectError(LedgerError, NotFoundError):
    pass


class UnknownVintageError(LedgerError, NotFoundError):
    pass


class UnknownAccountError(LedgerError, NotFoundError):
    pass


class UnknownRetirementError(LedgerError, NotFoundError):
    pass


class UnknownTreeHeadError(LedgerError, NotFoundError):
    """No signed tree head of the size asked for."""


class NotYetSignedError(LedgerError, NotFoundError):
    """The event is recorded but no signed tree head covers it yet: the audit log's follower
    (the background worker) signs the next head within minutes."""


class SerialNotFoundError(LedgerError, NotFoundError):
    pass


class DuplicateError(LedgerError, InvalidInputError):
    """Something with this id already exists: the name given is taken."""


class IdempotencyConflictError(LedgerError, ConflictError):
    """The idempotency key was used before for a different command."""


class AccountKindError(LedgerError, InvalidInputError):
    """The account may not take part in this movement (e.g. trading out of the buffer pool)."""


class ConcurrencyError(LedgerError, ConflictError):
    """Other writers kept changing the same accounts; the command was not applied."""


class RegistryPhaseError(LedgerError, ConflictError):
    """A retirement is not pending at its registry of record (Kapok's own, or already
    confirmed or failed there)."""


class MirroredProjectError(LedgerError, ConflictError):
    """Kapok is not the registry of record of this project's serials (they are Verra's): it
    never issues or numbers them, or the other way round."""


class RegistryMismatchError(LedgerError, InvalidInputError):
    """A registry's serials or export do not match what Kapok records."""
