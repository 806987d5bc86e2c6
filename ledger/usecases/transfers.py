"""Moving credits between accounts."""

from __future__ import annotations

from ledger.adapters.store import StaleReadError
from ledger.domain.accounts import BUFFER, account_id
from ledger.domain.errors import AccountKindError, InvalidCommandError, InvalidSerialError
from ledger.domain.serials import SerialRange
from ledger.usecases.movements import check_amount, move, movement_result, pick


class Transfers:
    """Use cases of transfers (needs ``self.store``, ``self.view`` and ``get_account``)."""

    def transfer(self, from_account: str, to_account: str, quantity: int | None = None,
                 serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """Moves ``quantity`` tonnes (oldest vintage first) or exactly ``serials`` between
        accounts, both changed in one save. Raises InsufficientCreditsError,
        SerialsNotHeldError, CreditsAlreadyRetiredError, UnknownAccountError, ..."""
        check_amount(quantity, serials)
        if from_account == to_account:
            raise InvalidCommandError("cannot transfer to the same account")

        def command():
            self.store.prefetch(account_id(from_account), account_id(to_account))
            sender, receiver = self.get_account(from_account), self.get_account(to_account)
            sender.check_can_send()
            if receiver.kind == BUFFER:
                raise AccountKindError("credits go into the buffer pool only at issuance")
            blocks = pick(self.view, sender, quantity, serials)
            try:
                transfer_id = move(blocks, sender, receiver)
            except InvalidSerialError:
                # The receiver already holds serials the sender still shows: one of the two
                # was loaded before a concurrent save. Nothing is saved; run again.
                raise StaleReadError(
                    f"{sender.name} and {receiver.name} were read at different moments") from None
            return [sender, receiver], movement_result(
                "transfer_id", transfer_id, blocks, sender.name, receiver.name)

        fields = {"from_account": from_account, "to_account": to_account,
                  "quantity": quantity, "serials": serials}
        return self.store.run("transfer", fields, idempotency_key, command)
