"""How Kapok answers each kind of error: a web request's HTTP status and a ``kapok`` command's
exit code, in one table, so that both agree and neither depends on a class's name."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PaymentDeclinedError,
    UnavailableError,
    UpstreamError,
    kind_of,
)

# The command line's exit codes: refused (the user's to fix), or not possible now (retry).
EXIT_REFUSED, EXIT_UNAVAILABLE = 1, 3


@dataclass(frozen=True)
class ErrorCodes:
    http_status: int
    exit_code: int


CODES: dict[type[Exception], ErrorCodes] = {
    InvalidInputError: ErrorCodes(400, EXIT_REFUSED),
    NotFoundError: ErrorCodes(404, EXIT_REFUSED),
    ConflictError: ErrorCodes(409, EXIT_REFUSED),
    # A declined card is the buyer's to fix; a payment provider that failed is not.
    PaymentDeclinedError: ErrorCodes(402, EXIT_REFUSED),
    UpstreamError: ErrorCodes(502, EXIT_UNAVAILABLE),
    UnavailableError: ErrorCodes(503, EXIT_UNAVAILABLE),
}
# A package's base raised as such says only that the command was refused.
NO_KIND = ErrorCodes(400, EXIT_REFUSED)


def codes_for(error: BaseException) -> ErrorCodes:
    """The HTTP status and exit code of ``error``, by the kind its class names."""
    kind = kind_of(type(error))
    return NO_KIND if kind is None else CODES[kind]
