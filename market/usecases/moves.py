"""Serials moving between two accounts a market command has loaded: into an order's escrow,
back to the inventory, on to the buyer."""

from __future__ import annotations

from ledger.domain.accounts import Account
from ledger.domain.ids import public_id
from ledger.domain.serials import SerialBlock


def move(blocks: list[SerialBlock], source: Account, target: Account) -> str:
    """Both halves of a transfer between two loaded accounts; returns its reference."""
    reference = public_id("KAP-TRF")
    source.send(blocks, target.name, reference)
    target.receive(blocks, source.name, reference)
    return reference
