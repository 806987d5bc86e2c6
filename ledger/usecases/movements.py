"""What the commands that move serials share: choosing them, and moving them between two
loaded accounts (transfers, and the market's escrows and deliveries)."""

from __future__ import annotations

from typing import Iterable

from ledger.domain.accounts import Account
from ledger.domain.errors import (CreditsAlreadyRetiredError, CreditsCancelledError,
                                  InsufficientCreditsError, InvalidCommandError,
                                  SerialsNotHeldError)
from ledger.domain.ids import public_id
from ledger.domain.quantities import check_quantity
from ledger.domain.serials import SerialBlock, SerialRange, total_quantity


def check_amount(quantity: int | None, serials: SerialRange | None) -> None:
    """Either a quantity or a serial range. Raises InvalidCommandError, InvalidQuantityError."""
    if (quantity is None) == (serials is None):
        raise InvalidCommandError("give either a quantity or a serial range, not both")
    if quantity is not None:
        check_quantity(quantity)


def pick(view, account: Account, quantity: int | None, serials: SerialRange | None):
    """The blocks to move; a missing serial that was retired or cancelled is named so (the
    read model ``view`` knows what became of it)."""
    try:
        return account.pick(quantity, serials)
    except SerialsNotHeldError as error:
        if error.missing is None:
            raise
        status = view.serial_status(error.missing)
        if status == "retired":
            raise CreditsAlreadyRetiredError(
                f"serial {error.missing} is already retired: retired credits are final",
                missing=error.missing,
            ) from None
        if status == "cancelled":
            raise CreditsCancelledError(
                f"serial {error.missing} was cancelled", missing=error.missing
            ) from None
        raise SerialsNotHeldError(
            f"account {account.name} does not hold serial {error.missing}",
            missing=error.missing,
        ) from None
    except InsufficientCreditsError as error:
        raise InsufficientCreditsError(f"{account.name}: {error}") from None


def move(blocks: list[SerialBlock], source: Account, target: Account) -> str:
    """Both halves of a transfer between two loaded accounts; returns its reference."""
    reference = public_id("KAP-TRF")
    source.send(blocks, target.name, reference)
    target.receive(blocks, source.name, reference)
    return reference


def movement_result(id_name: str, id_value: str, blocks: Iterable[SerialBlock],
                    from_account: str, to_account: str | None) -> dict:
    blocks = list(blocks)
    return {
        id_name: id_value,
        "from_account": from_account,
        "to_account": to_account,
        "quantity": total_quantity(blocks),
        "serials": [block.serial for block in blocks],
    }
