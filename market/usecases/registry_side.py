"""The market's side of a registry of record's word (``ledger.usecases.sale_side``): credits
of a retirement the registry refused go back to the buyer, and serials taken out of an
inventory leave the listings that offered them, in the same save."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ledger.domain.accounts import ESCROW, Account
from ledger.domain.retirements import Retirement
from ledger.domain.serials import SerialBlock
from market.domain.listings import CLOSED


class MarketSaleSide:
    def __init__(self, market):
        self.market = market

    def returned_to(self, retirement: Retirement) -> str:
        """The buyer's holding for a retirement on delivery (out of its order's escrow)."""
        account = self.market.ledger.get_account(retirement.account)
        if account.kind != ESCROW:
            return account.name
        order_id = self.market.view.order_of_escrow(account.name)
        if order_id is None:
            return account.name
        return self.market.get_order(order_id).buyer_account

    def off_sale(self, account: Account, blocks: Sequence[SerialBlock]) -> list:
        """Lowers the offer of the account's listings of the blocks' project vintages, newest
        listing first, until they offer no more than the account will still hold."""
        changed = []
        leaving = Counter()
        for block in blocks:
            leaving[block.project, block.vintage] += block.quantity
        for (project, vintage), tonnes in leaving.items():
            held = sum(block.quantity for block in account.blocks
                       if (block.project, block.vintage) == (project, vintage)) - tonnes
            offering = [self.market.get_listing(str(listing.id))
                        for listing in self.market.listings()
                        if listing.inventory_account == account.name
                        and (listing.project_registry_id, listing.vintage_year) == (project,
                                                                                  vintage)
                        and listing.status != CLOSED]
            excess = sum(listing.available for listing in offering) - held
            for listing in sorted(offering, key=lambda found: found.created_on, reverse=True):
                cut = min(max(excess, 0), listing.available)
                if cut:
                    listing.set_on_offer(listing.on_offer - cut)
                    changed.append(listing)
                    excess -= cut
        return changed
