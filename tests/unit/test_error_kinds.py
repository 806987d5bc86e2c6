"""Every domain error is of one kind, and the web and the command line answer by kind from one
table: a renamed class or a reworded message changes no status and no exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from identity.domain import AlreadyRegisteredError, IdentityError
from ledger.adapters.pg_store import DatabaseTimeoutError
from ledger.domain.errors import (
    KINDS,
    ConflictError,
    CreditsAlreadyRetiredError,
    CreditsCancelledError,
    InsufficientCreditsError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    PaymentDeclinedError,
    SerialsNotHeldError,
    UnavailableError,
    UnknownAccountError,
    UpstreamError,
    kind_of,
)
from ledger.error_codes import CODES, NO_KIND, codes_for
from market.domain.errors import MarketError, OverpaidError
from market.domain.payments import CardDeclinedError, PaymentProviderError
from web.errors import status_for

PACKAGE_BASES = (LedgerError, MarketError, IdentityError)
PACKAGES = ("ledger", "market", "identity", "cli")


def domain_error_classes() -> dict[str, type[Exception]]:
    """Every error class the packages define beneath a package base, by qualified name."""
    found = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if module.name.endswith("__main__"):  # running it runs the command line
                continue
            for name, value in vars(importlib.import_module(module.name)).items():
                if (inspect.isclass(value) and value.__module__ == module.name
                        and issubclass(value, PACKAGE_BASES) and value not in PACKAGE_BASES):
                    found[f"{module.name}.{name}"] = value
    return found


DOMAIN_ERRORS = domain_error_classes()


def test_the_walk_finds_the_errors_of_every_package():
    modules = {name.partition(".")[0] for name in DOMAIN_ERRORS}

    assert modules == set(PACKAGES)


@pytest.mark.parametrize("name", sorted(DOMAIN_ERRORS))
def test_every_domain_error_is_of_a_kind(name):
    error_class = DOMAIN_ERRORS[name]
    named = [base for base in error_class.__bases__ if base in KINDS]

    assert kind_of(error_class) is not None, f"{name} names no kind among its bases"
    assert len(named) <= 1, f"{name} names several kinds: {named}"


@pytest.mark.parametrize("base", PACKAGE_BASES)
def test_a_package_base_is_of_no_kind_so_each_error_names_its_own(base):
    assert kind_of(base) is None


def test_a_class_without_a_kind_is_noticed():
    assert kind_of(type("BareError", (LedgerError,), {})) is None


@pytest.mark.parametrize("error_class, kind", [
    (UnknownAccountError, NotFoundError),
    (InsufficientCreditsError, ConflictError),
    (SerialsNotHeldError, InvalidInputError),  # its own kind, not its parent's
    (CreditsAlreadyRetiredError, ConflictError),  # its own again, not SerialsNotHeldError's
    (CreditsCancelledError, InvalidInputError),  # its parent's, the nearest
    (OverpaidError, ConflictError),
    (CardDeclinedError, PaymentDeclinedError),
    (PaymentProviderError, UpstreamError),
    (DatabaseTimeoutError, UnavailableError),
    (ConflictError, ConflictError),
])
def test_the_kind_named_nearest_the_class_counts(error_class, kind):
    assert kind_of(error_class) is kind


# --- The table ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, http_status, exit_code", [
    (InvalidInputError, 400, 1),
    (NotFoundError, 404, 1),
    (ConflictError, 409, 1),
    (PaymentDeclinedError, 402, 1),
    (UpstreamError, 502, 3),
    (UnavailableError, 503, 3),
])
def test_the_table_answers_each_kind_as_documented(kind, http_status, exit_code):
    assert (CODES[kind].http_status, CODES[kind].exit_code) == (http_status, exit_code)


def test_the_table_answers_every_kind_and_nothing_else():
    assert set(CODES) == set(KINDS)


@pytest.mark.parametrize("error", [MarketError("refused"), LedgerError("refused"),
                                   IdentityError("refused"), ValueError("not ours")])
def test_an_error_of_no_kind_is_a_bad_request_and_a_refusal(error):
    assert codes_for(error) == NO_KIND
    assert (NO_KIND.http_status, NO_KIND.exit_code) == (400, 1)


# --- The HTTP status of every existing error class ------------------------------------------

# Read off the statuses given by class name, except ConcurrencyError (a retryable conflict)
# and NotYetSignedError (a NotFoundError), which the names made 400.
STATUSES = {
    "identity.domain.AlreadyRegisteredError": 409,
    "identity.domain.IdentityError": 400,
    "identity.domain.UnknownTokenError": 404,
    "identity.domain.UnknownUserError": 404,
    "ledger.adapters.backup.BackupError": 400,
    "ledger.audit.keys.SigningKeyError": 400,
    "ledger.domain.errors.AccountKindError": 400,
    "ledger.domain.errors.ConcurrencyError": 409,
    "ledger.domain.errors.CreditsAlreadyRetiredError": 409,
    "ledger.domain.errors.CreditsCancelledError": 400,
    "ledger.domain.errors.DuplicateError": 400,
    "ledger.domain.errors.IdempotencyConflictError": 409,
    "ledger.domain.errors.InsufficientCreditsError": 409,
    "ledger.domain.errors.InvalidCommandError": 400,
    "ledger.domain.errors.InvalidQuantityError": 400,
    "ledger.domain.errors.InvalidSerialError": 400,
    "ledger.domain.errors.LedgerError": 400,
    "ledger.domain.errors.NotYetSignedError": 404,
    "ledger.domain.errors.SerialNotFoundError": 404,
    "ledger.domain.errors.SerialsNotHeldError": 400,
    "ledger.domain.errors.UnknownAccountError": 404,
    "ledger.domain.errors.UnknownProjectError": 404,
    "ledger.domain.errors.UnknownRetirementError": 404,
    "ledger.domain.errors.UnknownVintageError": 404,
    "market.domain.listings.UnknownListingError": 404,
    "market.domain.errors.CurrencyMismatchError": 400,
    "market.domain.errors.InvalidAllocationError": 400,
    "market.domain.errors.InvalidFarmError": 400,
    "market.domain.errors.InvalidMoneyError": 400,
    "market.domain.errors.InvalidPayoutError": 400,
    "market.domain.errors.InvalidRuleError": 400,
    "market.domain.errors.InvalidSaleError": 400,
    "market.domain.errors.MarketError": 400,
    "market.domain.errors.NoRuleInForceError": 400,
    "market.domain.errors.OverpaidError": 409,
    "market.domain.errors.PayoutAlreadyRecordedError": 409,
    "market.domain.errors.SaleAlreadyRecordedError": 409,
    "market.domain.errors.UnknownCurrencyError": 400,
    "market.domain.errors.UnknownFarmError": 404,
    "market.domain.errors.UnknownRecipientError": 404,
    "market.domain.estimates.ActivityFileError": 400,
    "market.domain.estimates.InvalidActivityError": 400,
    "market.domain.estimates.UnknownFactorError": 400,
    "market.domain.listings.InvalidListingError": 400,
    "market.domain.listings.ListingError": 400,
    "market.domain.listings.ListingNotActiveError": 409,
    "market.domain.listings.ListingProjectMismatchError": 400,
    "market.domain.listings.ListingStatusError": 400,
    "market.domain.listings.NotEnoughAvailableError": 409,
    "market.domain.orders.IllegalTransitionError": 409,
    "market.domain.orders.UnknownOrderError": 404,
    "market.domain.payments.CardDeclinedError": 402,
    "market.domain.payments.InvalidWebhookError": 400,
    "market.domain.payments.PaymentError": 400,
    "market.domain.payments.PaymentProviderError": 502,
    "market.domain.quotes.AmountTooSmallError": 400,
    "market.domain.quotes.BelowMinimumQuantityError": 400,
    "market.domain.quotes.InvalidQuoteRequestError": 400,
    "market.domain.quotes.QuoteError": 400,
    "market.domain.reservations.InvalidReservationCapError": 400,
    "market.domain.reservations.ReservationCapError": 409,
}


def error_class_named(qualified: str) -> type[Exception]:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("qualified, status", sorted(STATUSES.items()))
def test_each_error_class_keeps_its_http_status(qualified, status):
    error_class = error_class_named(qualified)

    # The status depends on the class alone: an instance made without its arguments will do.
    assert status_for(error_class.__new__(error_class)) == status


def test_the_http_status_does_not_depend_on_the_message():
    assert status_for(AlreadyRegisteredError("someone@example.org is taken")) == 409
    assert status_for(IdentityError("already said: the password is too short")) == 400


# --- The command line's exit codes ----------------------------------------------------------

@pytest.fixture
def raising_command():
    """A ``kapok raise-for-test`` command raising the error given to the fixture's function."""
    from cli import cli

    raised = []

    @cli.command("raise-for-test")
    def raise_for_test():
        raise raised[0]

    yield raised.append
    del cli.commands["raise-for-test"]


@pytest.mark.parametrize("error, exit_code", [
    (UnknownAccountError("unknown account nobody"), 1),
    (OverpaidError("paid more than owed to COOP-001"), 1),
    (AlreadyRegisteredError("someone@example.org is already registered"), 1),
    (MarketError("refused, of no kind"), 1),
    (PaymentProviderError("the provider answered 500"), 3),
    (DatabaseTimeoutError("no answer within 10 s"), 3),
])
def test_the_command_line_exits_by_kind_with_one_line(raising_command, capsys, error,
                                                      exit_code):
    from cli import main

    raising_command(error)

    assert main(["raise-for-test"]) == exit_code
    assert capsys.readouterr().err == f"kapok: error: {error}\n"
