"""Issuing new serial batches of a project vintage."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import BUFFER, BUFFER_POOL, HOLDING, INVENTORY, Account, account_id
from ledger.domain.errors import (AccountKindError, InvalidCommandError, MirroredProjectError,
                                  SerialNotFoundError)
from ledger.domain.issuance import SERIAL_COUNTER_ID, Issuance, SerialCounter, issuance_id
from ledger.domain.quantities import check_quantity
from ledger.domain.serials import SerialBlock


class Issuing:
    """Use cases of issuance (needs ``self.store``, ``get_project`` and ``get_account``)."""

    def issue(self, registry_id: str, vintage: int, quantity: int,
              buffer_percent: Decimal | None = None, to_account: str | None = None,
              idempotency_key: str | None = None) -> dict:
        """Issues ``quantity`` new tonnes of a project vintage as one serial batch.

        The buffer share (the project's default unless given) goes to the buffer pool, the
        rest to the inventory account. Raises UnknownProjectError, UnknownVintageError,
        UnknownAccountError, InvalidQuantityError, InvalidCommandError.
        """
        check_quantity(quantity)
        if buffer_percent is not None and not (
            Decimal(buffer_percent).is_finite() and 0 <= Decimal(buffer_percent) < 100
        ):
            raise InvalidCommandError("buffer percent must be from 0 to below 100")

        def command():
            project = self.get_project(registry_id)
            project.vintage(vintage)
            details = project.details
            if details.mirrored:
                raise MirroredProjectError(
                    f"project {details.registry_id} is mirrored from Verra, its registry of "
                    "record: Kapok never issues its serials (import them with `kapok "
                    "registry import`)")
            percent = Decimal(details.buffer_percent if buffer_percent is None
                              else buffer_percent)
            inventory = self.get_account(to_account or details.inventory_account)
            if inventory.kind not in (INVENTORY, HOLDING):
                raise AccountKindError(
                    f"cannot issue into {inventory.kind} account {inventory.name}")
            buffer, counter = self._buffer_pool(), self._serial_counter()
            buffer_quantity = int((quantity * percent / 100).to_integral_value(ROUND_HALF_UP))
            batch, first, last = counter.allocate(quantity)
            issuance = Issuance(
                batch=batch, project=details.registry_id, vintage=vintage,
                country=details.country, first=first, last=last,
                buffer_quantity=buffer_quantity, buffer_percent=str(percent),
                inventory_account=inventory.name, buffer_account=buffer.name,
            )
            block = SerialBlock(vintage, batch, first, last, details.registry_id, details.country)
            split = last - buffer_quantity
            changed = [counter, issuance]
            if split >= first:
                inventory.record_issued([block.sub(first, split)], batch)
                changed.append(inventory)
            if buffer_quantity:
                buffer.record_issued([block.sub(split + 1, last)], batch)
                changed.append(buffer)
            return changed, {
                "batch": batch, "project": details.registry_id, "vintage": vintage,
                "quantity": quantity, "buffer_quantity": buffer_quantity,
                "serial": block.serial, "account": inventory.name,
            }

        fields = {"registry_id": registry_id, "vintage": vintage, "quantity": quantity,
                  "buffer_percent": buffer_percent, "to_account": to_account}
        return self.store.run("issue", fields, idempotency_key, command)

    def get_issuance(self, batch: int) -> Issuance:
        return self.store.get(issuance_id(batch), SerialNotFoundError, f"batch {batch}")

    def _serial_counter(self) -> SerialCounter:
        return self.store.singleton(SERIAL_COUNTER_ID, SerialCounter)

    def _buffer_pool(self) -> Account:
        try:
            pool = self.store.load(account_id(BUFFER_POOL))
        except AggregateNotFoundError:
            return self.store.remember(Account(BUFFER_POOL, BUFFER, "registry"))
        if pool.kind != BUFFER:  # written before the name was reserved: never pool into it
            raise AccountKindError(
                f"account {BUFFER_POOL} is a {pool.kind} account, not the buffer pool")
        return pool
