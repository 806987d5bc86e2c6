"""Retiring credits on a beneficiary's behalf, for good."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from ledger.domain.errors import (InvalidCommandError, RegistryMismatchError,
                                  UnknownRetirementError)
from ledger.domain.ids import named_id, public_id
from ledger.domain.mirror import RETIRED, RETIRED_INSIDE_ACTIVE, RegistryRange
from ledger.domain.retirements import Retirement, RetirementClaim
from ledger.domain.serials import SerialBlock, SerialRange
from ledger.domain.verra import parse_verra_serial
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
            check_one_registry(blocks)
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

    # --- retirements of mirrored serials, pending at their registry of record -------------
    def pending_registry_blocks(self) -> dict[tuple[int, int, int], tuple[str, str]]:
        """(batch, first, last) of every mirrored block of a pending retirement, with the
        retirement's id and beneficiary."""
        found = {}
        for retirement_id in self.caught_up_view().pending_retirements():
            retirement = self.get_retirement(retirement_id)
            for block in retirement.blocks:
                if block.mirrored and retirement.pending:
                    found[block.batch, block.first, block.last] = (
                        retirement.retirement_id, retirement.claim.beneficiary)
        return found

    def confirm_registry_retirement(self, retirement_id: str, registry_serials: list[str],
                                    on: date, by: str = "operator") -> dict:
        """An operator records the registry's confirmation: the serials it retired, which
        must be exactly the retirement's, and when. Raises UnknownRetirementError,
        RegistryPhaseError, RegistryMismatchError, InvalidSerialError."""
        shown = sorted({_range_of(text) for text in registry_serials})
        if not shown:
            raise InvalidCommandError("give the serial numbers the registry retired")
        if on > date.today():
            raise InvalidCommandError(f"the registry cannot have retired them on {on}, later "
                                      "than today")

        def command():
            retirement = self.get_retirement(retirement_id)
            locked = sorted((block.batch, block.first, block.last)
                            for block in retirement.blocks if block.mirrored)
            if retirement.pending and shown != locked:
                raise RegistryMismatchError(
                    f"retirement {retirement.retirement_id} locked "
                    f"{', '.join(_printed(retirement.blocks))}; the registry's serials "
                    f"{', '.join(registry_serials)} are not the same")
            retirement.confirm(tuple(text.strip().upper() for text in registry_serials), on, by)
            return [retirement, *self._shown_retired(retirement, on)], retirement_phase(
                retirement)

        fields = {"retirement_id": retirement_id, "serials": shown, "on": on}
        return self.store.run("confirm_registry_retirement", fields, None, command)

    def fail_registry_retirement(self, retirement_id: str, reason: str,
                                 by: str = "operator") -> dict:
        """The registry refused a pending retirement: the credits go back to the account
        they were retired from (a buyer's, for a retirement on delivery). Raises
        UnknownRetirementError, RegistryPhaseError, InvalidCommandError."""

        def command():
            retirement = self.get_retirement(retirement_id)
            retirement.fail(reason or "", by)
            self._check_not_shown_retired(retirement)
            holder = self.get_account(self.sale_side.returned_to(retirement))
            holder.take_back(retirement.blocks, retirement.retirement_id)
            return [retirement, holder], retirement_phase(retirement) | {
                "returned_to": holder.name}

        fields = {"retirement_id": retirement_id, "reason": reason}
        return self.store.run("fail_registry_retirement", fields, None, command)

    def _check_not_shown_retired(self, retirement: Retirement) -> None:
        """Credits the registry shows retired (for whomever) cannot go back to a holding."""
        for block in retirement.blocks:
            known = self._vintage_for(block.project, block.vintage) if block.mirrored else None
            if known and any(state == RETIRED for _, _, state in known.known_ranges(
                    block.batch, block.first, block.last)):
                raise RegistryMismatchError(
                    f"retirement {retirement.retirement_id}: the registry shows "
                    f"{block.serial} retired, so its credits cannot go back to the account; "
                    "run `kapok registry reconcile` and settle with the buyer")

    def _shown_retired(self, retirement: Retirement, on: date) -> list:
        """The mirrored vintages, now knowing the retirement's serials retired at their
        registry (as an import of a later export would have shown them)."""
        changed = {}
        for block in retirement.blocks:
            known = self._vintage_for(block.project, block.vintage)
            shown = RegistryRange(block.batch, block.first, block.last, block.tail, on,
                                  retirement.claim.beneficiary, retirement.claim.reason,
                                  retirement.claim.details)
            if block.mirrored and known.classify(shown) == RETIRED_INSIDE_ACTIVE:
                known.record((shown,), retirement.retirement_id)
                changed[known.id] = known
        return list(changed.values())


def check_one_registry(blocks: list[SerialBlock]) -> None:
    """A retirement is of Kapok's own serials or of one mirrored registry's, never both:
    only the latter wait for the registry's confirmation."""
    if len({block.mirrored for block in blocks}) > 1:
        raise InvalidCommandError(
            "these tonnes are partly Kapok's own credits and partly Verra's, which Verra "
            "must retire too: retire them separately (name a project's serial range)")


def retirement_phase(retirement: Retirement) -> dict:
    return {"retirement_id": retirement.retirement_id, "phase": retirement.registry_phase,
            "registry_serials": list(retirement.registry_serials),
            "registry_date": retirement.registry_date.isoformat()
            if retirement.registry_date else None, "failure": retirement.failure or None}


def _range_of(text: str) -> tuple[int, int, int]:
    serial = parse_verra_serial(text)
    return serial.batch, serial.first, serial.last


def _printed(blocks) -> list[str]:
    return [block.serial for block in blocks if block.mirrored]
