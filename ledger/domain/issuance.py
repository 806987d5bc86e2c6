"""Issuance: the registry-wide serial counter and the record of each issued batch."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import named_id

FIRST_SERIAL = 1_000_001


class SerialCounter(Aggregate):
    """Hands out batch ids and serial ranges. Every issuance saves it, so two issuances can
    never get overlapping serials: the second to save is stale and is retried."""

    @staticmethod
    def create_id() -> UUID:
        return SERIAL_COUNTER_ID

    @event("Started")
    def __init__(self) -> None:
        self.next_batch = 1
        self.next_serial = FIRST_SERIAL

    def allocate(self, quantity: int) -> tuple[int, int, int]:
        """Returns (batch, first, last) for ``quantity`` new serials."""
        batch, first = self.next_batch, self.next_serial
        self._allocated(batch, first, first + quantity - 1)
        return batch, first, first + quantity - 1

    @event("Allocated")
    def _allocated(self, batch: int, first: int, last: int) -> None:
        self.next_batch = batch + 1
        self.next_serial = last + 1


SERIAL_COUNTER_ID = named_id("counter", "serials")


class Issuance(Aggregate):
    """One issuance batch: serials ``first``..``last`` of a project vintage, of which the last
    ``buffer_quantity`` went to the buffer pool."""

    @staticmethod
    def create_id(batch: int, **_: object) -> UUID:
        return issuance_id(batch)

    @event("Issued")
    def __init__(
        self,
        batch: int,
        project: str,
        vintage: int,
        country: str,
        first: int,
        last: int,
        buffer_quantity: int,
        buffer_percent: str,
        inventory_account: str,
        buffer_account: str,
    ):
        self.batch = batch
        self.project = project
        self.vintage = vintage
        self.country = country
        self.first = first
        self.last = last
        self.buffer_quantity = buffer_quantity
        self.buffer_percent = buffer_percent
        self.inventory_account = inventory_account
        self.buffer_account = buffer_account

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1


def issuance_id(batch: int) -> UUID:
    return named_id("issuance", str(batch))
