"""What a sale's money owes the project's farms: benefit-sharing rules, the farms, payouts
and each currency's proceeds journal."""

from __future__ import annotations

from datetime import date, datetime

from eventsourcing.application import AggregateNotFoundError

from market.domain.errors import InvalidSaleError, NoRuleInForceError
from market.domain.orders import FULFILLED, REFUNDED, Order
from market.domain.proceeds import (BenefitSharingRule, Farm, FarmDetails, ProceedsLedger,
                                    SaleProceeds, benefit_rule_id, farm_id, proceeds_ledger_id,
                                    sale_proceeds_id)
from market.domain.roster import FarmRoster


class Proceeds:
    """Use cases of proceeds (needs ``self.store``, ``self.ledger`` and ``self.now``)."""

    def set_benefit_rule(self, project: str, shares: dict,
                         effective_from: datetime | None = None) -> dict:
        """A new version of the project's benefit-sharing rule, in force from
        ``effective_from`` (now, if not given)."""

        def command():
            self.ledger.get_project(project)
            rule = self._benefit_rule(project, create=True)
            version = rule.set_shares(shares, effective_from or self.now())
            return [rule], {"project": project, "version": version.version}

        fields = {"project": project, "shares": shares, "effective_from": effective_from}
        return self.store.run("set_benefit_rule", fields, None, command)

    def register_farm(self, project: str, farm_code: str, details: FarmDetails,
                      idempotency_key: str | None = None) -> dict:
        """Adds a farm to the project's roster, to share in its sales."""

        def command():
            self.ledger.get_project(project)
            roster = self._roster()
            roster.add(project, farm_code)
            farm = Farm.register(project, farm_code, details)
            return [roster, farm], {"project": project, "farm": farm_code}

        fields = {"project": project, "farm_code": farm_code, "details": details}
        return self.store.run("register_farm", fields, idempotency_key, command)

    def farms(self, project: str) -> list[Farm]:
        return [self.store.load(farm_id(project, code))
                for code in self._roster().codes_of(project)]

    def record_payout(self, currency: str, recipient: str, farm_code: str | None,
                      amount_minor: int, paid_on: date, reference: str) -> dict:
        """Money paid out to a recipient (a farm, or the project's other payees)."""

        def command():
            journal = self._proceeds(currency)
            payout = journal.record_payout(recipient, farm_code, amount_minor, paid_on,
                                           reference, exists=self.store.exists)
            return [journal, payout], {"reference": payout.entry.reference,
                                       "owed": journal.owed(recipient, farm_code)}

        fields = {"currency": currency, "recipient": recipient, "farm_code": farm_code,
                  "amount_minor": amount_minor, "paid_on": paid_on, "reference": reference}
        return self.store.run("record_payout", fields, None, command)

    def benefit_rule(self, project: str) -> BenefitSharingRule:
        """Raises NoRuleInForceError if the project has none yet."""
        return self._benefit_rule(project)

    def proceeds(self, currency: str) -> ProceedsLedger:
        """The currency's journal: running totals (its entries are in the view)."""
        return self._proceeds(currency)

    def booked_sale(self, order: Order) -> SaleProceeds | None:
        """The order's sale as the proceeds journal booked it (who its money went to), or
        None for an order whose payment has not settled."""
        if order.state not in (FULFILLED, REFUNDED):
            return None  # a sale is booked in the save that fulfils its order: not read
        try:
            return self.sale_proceeds(order.currency, order.order_id)
        except InvalidSaleError:
            return None

    def sale_proceeds(self, currency: str, order_id: str) -> SaleProceeds:
        """An order's booked sale, with its entry. Raises InvalidSaleError if none."""
        try:
            return self.store.load(sale_proceeds_id(currency, order_id))
        except AggregateNotFoundError:
            raise InvalidSaleError(f"order {order_id} has no booked sale") from None

    def _roster(self) -> FarmRoster:
        return self.store.singleton(FarmRoster.create_id(), FarmRoster)

    def _benefit_rule(self, project: str, create: bool = False) -> BenefitSharingRule:
        try:
            return self.store.load(benefit_rule_id(project))
        except AggregateNotFoundError:
            if create:
                return self.store.remember(BenefitSharingRule.create(project))
            raise NoRuleInForceError(f"project {project} has no benefit-sharing rule") from None

    def _proceeds(self, currency: str) -> ProceedsLedger:
        return self.store.singleton(proceeds_ledger_id(currency),
                                    lambda: ProceedsLedger.open(currency))
