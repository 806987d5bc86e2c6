"""What the registry's use cases ask of whatever sells its credits (the market), when a
registry of record changes what Kapok may hold: a port, so the ledger never imports the market."""

from __future__ import annotations

from typing import Protocol, Sequence

from ledger.domain.accounts import Account
from ledger.domain.retirements import Retirement
from ledger.domain.serials import SerialBlock


class SaleSide(Protocol):
    def returned_to(self, retirement: Retirement) -> str:
        """The account that gets back the credits of a retirement its registry refused."""

    def off_sale(self, account: Account, blocks: Sequence[SerialBlock]) -> list:
        """Takes ``blocks``, about to leave ``account``, off sale: the aggregates changed,
        to be saved with the move."""

    def release_reserved(self, escrow: Account, reason: str) -> list:
        """Cancels the reservation ``escrow`` holds serials for, after the serials its
        registry showed retired left it: the aggregates changed (none if it held none)."""


class NothingSold:
    """The registry on its own: credits go back where they were retired from, and nothing is
    offered for sale."""

    def returned_to(self, retirement: Retirement) -> str:
        return retirement.account

    def off_sale(self, account: Account, blocks: Sequence[SerialBlock]) -> list:
        return []

    def release_reserved(self, escrow: Account, reason: str) -> list:
        return []
