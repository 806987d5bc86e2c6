"""Cancelling credits (an operator's correction) and reversals (a project's loss event)."""

from __future__ import annotations

from ledger.domain.accounts import BUFFER_POOL
from ledger.domain.errors import InvalidCommandError
from ledger.domain.ids import public_id
from ledger.domain.retirements import CANCELLATION, REVERSAL, Cancellation
from ledger.domain.serials import SerialRange
from ledger.usecases.movements import check_amount, movement_result, pick


class Cancellations:
    """Use cases of cancellation (needs ``self.store``, ``self.view``, ``get_account`` and
    ``get_project``)."""

    def cancel(self, account: str, reason: str, quantity: int | None = None,
               serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """An operator cancels tonnes from an account, with a reason; final like retirement."""
        return self._cancel(CANCELLATION, account, reason, quantity, serials, None,
                            idempotency_key)

    def reverse(self, registry_id: str, quantity: int, reason: str,
                idempotency_key: str | None = None) -> dict:
        """Records a loss event on a project: cancels ``quantity`` buffer units from the pool."""
        self.get_project(registry_id)
        return self._cancel(REVERSAL, BUFFER_POOL, reason, quantity, None, registry_id,
                            idempotency_key)

    def _cancel(self, kind, account, reason, quantity, serials, project, idempotency_key):
        check_amount(quantity, serials)
        reason = (reason or "").strip()
        if not reason or len(reason) > 500:
            raise InvalidCommandError("a cancellation needs a reason (at most 500 characters)")

        def command():
            holder = self.get_account(account)
            blocks = pick(self.view, holder, quantity, serials)
            cancellation_id = public_id("KAP-CAN")
            holder.cancel(blocks, cancellation_id)
            record = Cancellation(cancellation_id, kind, holder.name, tuple(blocks), reason,
                                  project)
            return [holder, record], movement_result(
                "cancellation_id", cancellation_id, blocks, holder.name, None)

        fields = {"account": account, "reason": reason, "quantity": quantity,
                  "serials": serials, "project": project}
        return self.store.run(kind, fields, idempotency_key, command)
