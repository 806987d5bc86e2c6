"""Accounts: who holds which serial blocks.

An account holds a sorted, compact list of serial blocks. Its events record only the blocks
that moved, never the whole holding, so an event's size and its replay cost follow the blocks
touched, not the account's history or its tonnes.
"""

from __future__ import annotations

from typing import Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import AccountKindError, InvalidCommandError
from ledger.domain.ids import named_id
from ledger.domain.serials import (
    SerialBlock,
    SerialRange,
    add_blocks,
    remove_blocks,
    take_quantity,
    take_range,
    total_quantity,
)

INVENTORY = "inventory"  # an operator's stock for sale
HOLDING = "holding"  # a buyer's or partner's account
BUFFER = "buffer"  # the pooled non-permanence buffer: never traded
ESCROW = "escrow"  # tonnes reserved for a pending order
# Mirrored serials that their registry of record shows retired or cancelled while Kapok held
# them: taken out of trade until an operator resolves the double count.
QUARANTINE = "quarantine"
ACCOUNT_KINDS = (INVENTORY, HOLDING, BUFFER, ESCROW, QUARANTINE)

# The status a tonne has while it sits in an account of each kind.
STATUS_BY_KIND = {INVENTORY: "held", HOLDING: "held", BUFFER: "buffer", ESCROW: "reserved",
                  QUARANTINE: "quarantined"}
BUFFER_POOL = "buffer-pool"
REGISTRY_QUARANTINE = "registry-quarantine"
MAX_NAME_LENGTH = 64


def account_id(name: str) -> UUID:
    return named_id("account", name)


def check_account_name(name: str) -> None:
    allowed = name.replace("-", "").replace("_", "").replace(".", "")
    if not name or len(name) > MAX_NAME_LENGTH or not allowed.isalnum() or not name.isascii():
        raise InvalidCommandError(
            f"invalid account name {name!r}: 1-{MAX_NAME_LENGTH} letters, digits, '-', '_', '.'"
        )


class Account(Aggregate):
    """A registry account and the serial blocks it holds."""
    # Containers of immutable values only: a copy for a command copies them shallowly
    # (ledger.adapters.store.copy_aggregate).
    flat_containers = frozenset({"blocks"})

    @staticmethod
    def create_id(name: str, kind: str, owner: str) -> UUID:
        return account_id(name)

    @event("Opened")
    def __init__(self, name: str, kind: str, owner: str):
        self.name = name
        self.kind = kind
        self.owner = owner
        # A list, as a snapshot restores it: loaded from events or from a snapshot, the same.
        self.blocks: list[SerialBlock] = []

    @property
    def balance(self) -> int:
        return total_quantity(self.blocks)

    @property
    def status(self) -> str:
        return STATUS_BY_KIND[self.kind]

    def pick(self, quantity: int | None, serials: SerialRange | None) -> list[SerialBlock]:
        """The blocks a command takes: ``serials`` exactly, else ``quantity`` oldest first."""
        if serials is not None:
            taken, _ = take_range(self.blocks, serials)
        else:
            taken, _ = take_quantity(self.blocks, quantity or 0)
        return taken

    def pick_of(self, project: str, vintage: int, quantity: int) -> list[SerialBlock]:
        """``quantity`` tonnes of one project vintage (what a listing sells), lowest first."""
        matching = [b for b in self.blocks if b.project == project and b.vintage == vintage]
        taken, _ = take_quantity(matching, quantity)
        return taken

    def check_can_send(self) -> None:
        if self.kind == BUFFER:
            raise AccountKindError(
                f"account {self.name} is the buffer pool: its credits are never traded or "
                f"retired, only cancelled for a reversal"
            )
        if self.kind == QUARANTINE:
            raise AccountKindError(
                f"account {self.name} holds serials their registry of record shows retired "
                "or cancelled: they are never traded or retired in Kapok")

    def record_issued(self, blocks: Sequence[SerialBlock], issuance_batch: int) -> None:
        self._issued(tuple(blocks), issuance_batch)

    def send(self, blocks: Sequence[SerialBlock], to_account: str, transfer_id: str) -> None:
        self.check_can_send()
        self._sent(tuple(blocks), to_account, transfer_id)

    def receive(self, blocks: Sequence[SerialBlock], from_account: str, transfer_id: str) -> None:
        self._received(tuple(blocks), from_account, transfer_id)

    def retire(self, blocks: Sequence[SerialBlock], retirement_id: str) -> None:
        self.check_can_send()
        self._retired(tuple(blocks), retirement_id)

    def cancel(self, blocks: Sequence[SerialBlock], cancellation_id: str) -> None:
        self._cancelled(tuple(blocks), cancellation_id)

    def record_imported(self, blocks: Sequence[SerialBlock], import_id: str) -> None:
        """Blocks a mirrored registry's export shows held in this account there."""
        self._imported(tuple(blocks), import_id)

    def take_back(self, blocks: Sequence[SerialBlock], retirement_id: str) -> None:
        """Blocks of a retirement its registry of record refused: held here again."""
        self._returned(tuple(blocks), retirement_id)

    # Event bodies only assign state: they run again on every replay.
    @event("Issued")
    def _issued(self, blocks: tuple[SerialBlock, ...], issuance_batch: int) -> None:
        self.blocks = add_blocks(self.blocks, blocks)

    @event("Received")
    def _received(self, blocks: tuple[SerialBlock, ...], from_account: str, transfer_id: str):
        self.blocks = add_blocks(self.blocks, blocks)

    @event("Sent")
    def _sent(self, blocks: tuple[SerialBlock, ...], to_account: str, transfer_id: str) -> None:
        self.blocks = remove_blocks(self.blocks, blocks)

    @event("Retired")
    def _retired(self, blocks: tuple[SerialBlock, ...], retirement_id: str) -> None:
        self.blocks = remove_blocks(self.blocks, blocks)

    @event("Cancelled")
    def _cancelled(self, blocks: tuple[SerialBlock, ...], cancellation_id: str) -> None:
        self.blocks = remove_blocks(self.blocks, blocks)

    @event("Imported")
    def _imported(self, blocks: tuple[SerialBlock, ...], import_id: str) -> None:
        self.blocks = add_blocks(self.blocks, blocks)

    @event("RetirementReturned")
    def _returned(self, blocks: tuple[SerialBlock, ...], retirement_id: str) -> None:
        self.blocks = add_blocks(self.blocks, blocks)

