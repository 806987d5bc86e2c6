"""Retiring credits on a beneficiary's behalf, for good."""

from __future__ import annotations

from dataclasses import replace

from ledger.domain.errors import UnknownRetirementError
from ledger.domain.ids import named_id, public_id
from ledger.domain.retirements import Retirement, RetirementClaim
from ledger.domain.serials import SerialRange
from ledger.usecases.movements import check_amount, movement_result, pick


class Retirements:
    """Use cases of retirement (needs ``self.store``, ``self.view`` and ``get_account``)."""

    def retire(self, account: str, claim: RetirementClaim, quantity: int | None = None,
               serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """Retires tonnes from ``account`` on the claim's beneficiary's behalf, for good.
        Returns the public retirement id with the serials retired."""
        check_amount(quantity, serials)
        claim = replace(claim, beneficiary=claim.beneficiary.strip(), reason=claim.reason.strip())
        claim.check()

        def command():
            holder = self.get_account(account)
            holder.check_can_send()
            blocks = pick(self.view, holder, quantity, serials)
            retirement_id = public_id("KAP-RET")
            holder.retire(blocks, retirement_id)
            retirement = Retirement(retirement_id, holder.name, tuple(blocks), claim)
            return [holder, retirement], movement_result(
                "retirement_id", retirement_id, blocks, holder.name, None)

        fields = {"account": account, "claim": claim, "quantity": quantity, "serials": serials}
        return self.store.run("retire", fields, idempotency_key, command)

    def get_retirement(self, retirement_id: str) -> Retirement:
        return self.store.get(named_id("retirement", retirement_id.strip().upper()),
                              UnknownRetirementError, f"retirement {retirement_id}")
