"""Sale proceeds: benefit-sharing rules, the farms that share, and the journal of what is owed.

A sale's amount is split first among a project's recipients by the rule in force when it was
paid, then the farmers' part among the project's active farms by agroforestry hectares. Every
split is by largest remainder, so the parts always sum to the amount: no cent is made or lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Callable, Iterable, Mapping, Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import named_id
from ledger.domain.text import check_text
from market.domain import money
from market.domain.allocation import allocate
from market.domain.errors import (
    InvalidFarmError,
    InvalidMoneyError,
    InvalidPayoutError,
    InvalidRuleError,
    InvalidSaleError,
    NoRuleInForceError,
    OverpaidError,
    PayoutAlreadyRecordedError,
    SaleAlreadyRecordedError,
    UnknownFarmError,
    UnknownRecipientError,
)

FARMERS = "farmers"  # the one recipient whose share is split across the project's farms
HUNDRED = Decimal(100)
MAX_KEY = 64
MAX_TEXT = 200

# Recipients are lower-case keys ("aider-field-programme"), so "Farmers" cannot pose as
# "farmers"; ids and codes are ASCII. Neither may hold ":", which joins journal account names.
_RECIPIENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*", re.ASCII)
_CODE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", re.ASCII)


def benefit_rule_id(registry_id: str) -> UUID:
    return named_id("benefit-rule", registry_id)


def farm_id(registry_id: str, farm_code: str) -> UUID:
    return named_id("farm", f"{registry_id}:{farm_code}")


def proceeds_ledger_id(currency: str) -> UUID:
    return named_id("proceeds", currency)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(value: object, pattern: re.Pattern, what: str, error: type[Exception]) -> None:
    if not isinstance(value, str) or len(value) > MAX_KEY or not pattern.fullmatch(value):
        raise error(f"invalid {what} {value!r}: 1-{MAX_KEY} ASCII letters, digits and '-'")


def _check_moment(value: object, what: str) -> None:
    # Aware datetimes only: comparing naive and aware ones fails, and a naive one is ambiguous.
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidRuleError(f"{what} must be a timezone-aware datetime, not {value!r}")


def _check_day(value: object, what: str, error: type[Exception]) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise error(f"{what} must be a date, not {value!r}")


# --- Benefit-sharing rules -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleVersion:
    """One version of a project's rule: percentage ``shares`` per recipient (read-only, in
    recipient order), in force from ``effective_from`` until the next version's."""

    version: int
    shares: dict[str, Decimal]
    effective_from: datetime


def check_shares(shares: Mapping[str, Decimal | int]) -> dict[str, Decimal]:
    """The shares as Decimals in recipient order. Raises InvalidRuleError naming every problem:
    recipients that are not lower-case keys, shares that are not positive, a sum other than
    exactly 100."""
    if not isinstance(shares, Mapping) or not shares:
        raise InvalidRuleError("a benefit-sharing rule needs at least one recipient's share")
    problems = []
    for recipient, share in shares.items():
        if not isinstance(recipient, str) or not _RECIPIENT.fullmatch(recipient):
            problems.append(f"recipient {recipient!r} is not lower-case letters, digits and '-'")
        if isinstance(share, bool) or not isinstance(share, (int, Decimal)):
            problems.append(f"share of {recipient!r} must be an int or Decimal, not {share!r}")
        elif not Decimal(share).is_finite() or share <= 0:
            problems.append(f"share of {recipient!r} must be a positive percentage: {share}")
    if not problems and (total := sum(map(Decimal, shares.values()))) != HUNDRED:
        problems.append(f"shares sum to {total}, not exactly 100")
    if problems:
        raise InvalidRuleError("; ".join(problems))
    return {recipient: Decimal(shares[recipient]) for recipient in sorted(shares)}


class BenefitSharingRule(Aggregate):
    """How a project's proceeds are shared, versioned: a sale is split by the version in
    force when it was paid, whatever was decided later."""

    @staticmethod
    def create_id(registry_id: str, **_: object) -> UUID:
        return benefit_rule_id(registry_id)

    @classmethod
    def create(cls, registry_id: str) -> BenefitSharingRule:
        _check_text(registry_id, _CODE, "registry id", InvalidRuleError)
        return cls(registry_id)

    @event("Created")
    def __init__(self, registry_id: str):
        self.registry_id = registry_id
        self.versions: list[RuleVersion] = []

    def set_shares(self, shares: Mapping[str, Decimal | int], effective_from: datetime
                   ) -> RuleVersion:
        """Records the next version. It must start after the latest one: rewriting the past
        would change the split of sales already paid. Raises InvalidRuleError."""
        checked = check_shares(shares)
        _check_moment(effective_from, "effective_from")
        if self.versions and effective_from <= self.versions[-1].effective_from:
            latest = self.versions[-1]
            raise InvalidRuleError(
                f"rule of project {self.registry_id}: version {latest.version} is in force "
                f"from {latest.effective_from.isoformat()}; a new version must start later"
            )
        rule = RuleVersion(len(self.versions) + 1, checked, effective_from)
        self._shares_set(rule)
        return rule

    def rule_at(self, moment: datetime) -> RuleVersion:
        """The version in force at ``moment``; raises NoRuleInForceError before the first."""
        _check_moment(moment, "moment")
        for rule in reversed(self.versions):
            if rule.effective_from <= moment:
                return rule
        raise NoRuleInForceError(
            f"project {self.registry_id} has no benefit-sharing rule in force at "
            f"{moment.isoformat()}"
        )

    @event("SharesSet")
    def _shares_set(self, rule: RuleVersion) -> None:
        self.versions.append(rule)


# --- Farms ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FarmDetails:
    """A farm's family and land. ``weight``, when set, replaces the agroforestry hectares as
    the farm's weight in the farmers' share (0 leaves it out while it stays active)."""

    farmer_name: str
    forest_ha: Decimal  # forest kept standing
    agroforestry_ha: Decimal
    weight: Decimal | None = None

    @property
    def share_weight(self) -> Decimal:
        return self.agroforestry_ha if self.weight is None else self.weight

    def check(self, farm_code: str) -> None:
        """Raises InvalidFarmError naming the farm and the first field not acceptable."""
        name = self.farmer_name
        check_text(f"farm {farm_code}'s farmer or family name", name, most=MAX_TEXT,
                   error=InvalidFarmError)
        for field in ("forest_ha", "agroforestry_ha", "weight"):
            value = getattr(self, field)
            if value is None and field == "weight":
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise InvalidFarmError(
                    f"farm {farm_code}: {field} must be a Decimal of at least 0, not {value!r}"
                )


class Farm(Aggregate):
    """A farm of a project's buffer zone that shares in the farmers' part of its proceeds."""

    @staticmethod
    def create_id(registry_id: str, farm_code: str, **_: object) -> UUID:
        return farm_id(registry_id, farm_code)

    @classmethod
    def register(cls, registry_id: str, farm_code: str, details: FarmDetails) -> Farm:
        _check_text(registry_id, _CODE, "registry id", InvalidFarmError)
        _check_text(farm_code, _CODE, "farm code", InvalidFarmError)
        details.check(farm_code)
        return cls(registry_id, farm_code, details)

    @event("Registered")
    def __init__(self, registry_id: str, farm_code: str, details: FarmDetails):
        self.registry_id = registry_id
        self.farm_code = farm_code
        self.details = details
        self.active = True

    @property
    def share_weight(self) -> Decimal:
        return self.details.share_weight

    def update(self, details: FarmDetails) -> None:
        """Replaces the farm's details (``dataclasses.replace`` the current ones)."""
        details.check(self.farm_code)
        if details != self.details:
            self._updated(details)

    def deactivate(self) -> None:
        if self.active:
            self._deactivated()

    def reactivate(self) -> None:
        if not self.active:
            self._reactivated()

    @event("Updated")
    def _updated(self, details: FarmDetails) -> None:
        self.details = details

    @event("Deactivated")
    def _deactivated(self) -> None:
        self.active = False

    @event("Reactivated")
    def _reactivated(self) -> None:
        self.active = True


# --- Splitting a sale ----------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """Minor units of one sale owed to a recipient, or to one farm when ``farm_code`` is set."""

    recipient: str
    farm_code: str | None
    minor: int


def split_proceeds(amount_minor: int, currency: str, rule: RuleVersion, farms: Sequence[Farm]
                   ) -> list[Allocation]:
    """``amount_minor`` shared by ``rule`` among its recipients, the farmers' part among the
    active farms by weight; parts of 0 are left out. With no active farm of positive weight
    the farmers' part is owed to ``farmers`` as a whole (``farm_code`` None), so it is never
    lost. The allocations sum exactly to the amount.

    Raises InvalidMoneyError for a negative amount or unknown currency, InvalidFarmError for
    farms of several projects or repeated farm codes."""
    money.currency(currency)
    if not _is_whole(amount_minor) or amount_minor < 0:
        raise InvalidMoneyError(f"amount must be whole minor units >= 0: {amount_minor!r}")
    sharing = _sharing_farms(farms)
    allocations = []
    for recipient, part in zip(rule.shares, allocate(amount_minor, list(rule.shares.values()))):
        if recipient != FARMERS:
            allocations.append(Allocation(recipient, None, part))
        elif sharing:
            parts = allocate(part, [farm.share_weight for farm in sharing])
            allocations += [Allocation(FARMERS, f.farm_code, p) for f, p in zip(sharing, parts)]
        else:
            allocations.append(Allocation(FARMERS, None, part))
    return [allocation for allocation in allocations if allocation.minor]


def _sharing_farms(farms: Sequence[Farm]) -> list[Farm]:
    """The active farms of positive weight, in farm-code order so ties split the same way
    however the caller listed them."""
    codes = [farm.farm_code for farm in farms]
    if len(set(codes)) != len(codes):
        raise InvalidFarmError(f"farm codes repeat in {sorted(codes)}")
    projects = {farm.registry_id for farm in farms}
    if len(projects) > 1:
        raise InvalidFarmError(f"farms of several projects share one sale: {sorted(projects)}")
    sharing = [farm for farm in farms if farm.active and farm.share_weight > 0]
    return sorted(sharing, key=lambda farm: farm.farm_code)


# --- The proceeds journal ------------------------------------------------------------------

CASH = "cash"  # received from buyers, less payment fees, less payouts
PAYMENT_FEES = "payment-fees"  # the payment provider's fees: the platform's expense
PAYABLE = "payable"  # "payable:<recipient>" or "payable:farmers:<farm code>"
SALE = "sale"
PAYOUT = "payout"
REFUND = "refund"  # a sale given back: its entry reversed, line by line


def payable_account(recipient: str, farm_code: str | None = None) -> str:
    return f"{PAYABLE}:{recipient}" if farm_code is None else f"{PAYABLE}:{recipient}:{farm_code}"


def payee_of(account: str) -> tuple[str, str | None] | None:
    """(recipient, farm code) of a payable account; None for any other account."""
    kind, _, payee = account.partition(":")
    if kind != PAYABLE:
        return None
    recipient, _, farm_code = payee.partition(":")
    return recipient, farm_code or None


def sale_proceeds_id(currency: str, order_id: str) -> UUID:
    return named_id("sale-proceeds", f"{currency}/{order_id}")


def payout_id(currency: str, account: str, reference: str) -> UUID:
    # No currency code or account name holds "/", so a reference (free text, last) cannot
    # make the names of two payouts meet.
    return named_id("payout", f"{currency}/{account}/{reference}")


@dataclass(frozen=True)
class Posting:
    """One line of an entry: minor units debited (positive) or credited (negative)."""

    account: str
    amount: int

    def __deepcopy__(self, memo) -> Posting:
        return self  # immutable: the aggregate cache deep-copies what it hands out


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of postings: an order's proceeds received or refunded, or a payout."""

    kind: str  # SALE, REFUND or PAYOUT
    reference: str  # the order id, or the payout's bank or transfer reference
    on: date
    postings: tuple[Posting, ...]
    project: str | None = None  # the project whose credits were sold (sales and refunds)

    def __deepcopy__(self, memo) -> JournalEntry:
        return self  # immutable (its postings are a tuple of immutable postings)

    @property
    def allocated(self) -> int:
        """What the entry allocates to payees: a sale's amount, minus that for its refund, 0
        for a payout (it pays out what was allocated)."""
        if self.kind == PAYOUT:
            return 0
        return -sum(posting.amount for posting in self.postings if payee_of(posting.account))

    def reversed(self, on: date) -> JournalEntry:
        """The refund of this sale: every line negated."""
        return JournalEntry(REFUND, self.reference, on,
                            tuple(Posting(p.account, -p.amount) for p in self.postings),
                            self.project)

    def reversed_in_part(self, amount_minor: int, reversed_so_far: Mapping[str, int],
                         on: date) -> JournalEntry:
        """The refund of ``amount_minor`` of this sale: each side's lines reversed in
        proportion to what is left of them (largest remainder), so the parts sum exactly,
        no line gives back more than it has left, and the refund of all that is left
        leaves nothing. ``reversed_so_far``: what earlier refunds took from each line."""
        postings = []
        for side in (1, -1):  # debits (cash, fees), then credits (the payees)
            lines = [p for p in self.postings if p.amount * side > 0]
            left = [abs(p.amount) - reversed_so_far.get(p.account, 0) for p in lines]
            parts = allocate(amount_minor, left) if sum(left) else [0] * len(lines)
            postings += [Posting(p.account, -side * part)
                         for p, part in zip(lines, parts) if part]
        return JournalEntry(REFUND, self.reference, on, tuple(postings), self.project)


@dataclass(frozen=True)
class StatementRow:
    """A movement of one payee's account; ``owed`` is what is owed after it."""

    on: date
    kind: str
    reference: str
    recipient: str
    farm_code: str | None
    allocated: int
    paid_out: int
    owed: int
    project: str | None = None


class ProceedsLedger(Aggregate):
    """One currency's proceeds as a double-entry journal in minor units: cash received against
    what is owed to each recipient and farm, then payouts against what is owed.

    Its state is running totals only, as small after a million sales as after ten. Each entry
    is kept in its event (the market's view lists them for statements and the auditor), a
    sale's also in its ``SaleProceeds`` and a payout's in its ``Payout``: those are named by
    what they record and saved with the journal, so the store refuses to book an order, or a
    payout reference for a payee, twice. The journal asks the store first (``exists``), so a
    retry is refused by name: a caller retrying can treat it as done, one with a bug hears."""
    # Containers of immutable values only: a copy for a command copies them shallowly
    # (ledger.application.copy_aggregate).
    flat_containers = frozenset({"debits", "credits", "withdrawn", "by_project"})

    @staticmethod
    def create_id(currency: str, **_: object) -> UUID:
        return proceeds_ledger_id(currency)

    @classmethod
    def open(cls, currency: str) -> ProceedsLedger:
        money.currency(currency)
        return cls(currency)

    @event("Opened")
    def __init__(self, currency: str):
        self.currency = currency
        # Totals per account, so checks never need the entries.
        self.debits: dict[str, int] = {}
        self.credits: dict[str, int] = {}
        self.withdrawn: dict[str, int] = {}  # what refunds took back from each payee
        self.by_project: dict[str, int] = {}  # allocated by sales less refunds, per project

    def _show(self, minor: int) -> str:
        return str(money.Money.from_minor(minor, self.currency))

    @property
    def has_entries(self) -> bool:
        return bool(self.debits)  # every entry debits an account

    def allocated(self, recipient: str, farm_code: str | None = None) -> int:
        """Allocated by sales, less what refunds withdrew."""
        account = payable_account(recipient, farm_code)
        return self.credits.get(account, 0) - self.withdrawn.get(account, 0)

    def paid_out(self, recipient: str, farm_code: str | None = None) -> int:
        """Paid out by payouts (refund reversals are not payouts)."""
        account = payable_account(recipient, farm_code)
        return self.debits.get(account, 0) - self.withdrawn.get(account, 0)

    def owed(self, recipient: str, farm_code: str | None = None) -> int:
        account = payable_account(recipient, farm_code)
        return self.credits.get(account, 0) - self.debits.get(account, 0)

    def payees(self) -> list[tuple[str, str | None]]:
        """Every (recipient, farm code) ever allocated anything, by recipient then farm (a
        payout needs an allocation first, so no payee is only in the debits)."""
        found = {payee for account in self.credits if (payee := payee_of(account))}
        return sorted(found, key=lambda payee: (payee[0], payee[1] or ""))

    def totals_by_project(self) -> dict[str, int]:
        """Net proceeds allocated per project (sales less refunds), in minor units. A sale
        booked without a project counts in none."""
        return dict(self.by_project)

    def record_sale(self, order_id: str, amount_minor: int, allocations: Sequence[Allocation],
                    stripe_fee_minor: int | None = None, *, received_on: date | None = None,
                    project: str | None = None, exists: Callable[[UUID], bool]
                    ) -> SaleProceeds:
        """Books an order's proceeds: cash net of the payment fee (booked apart, as the
        platform's expense, when known) against what each allocation's payee is now owed.
        ``received_on`` defaults to today (UTC); ``exists`` says whether the store holds an
        aggregate. Returns the sale's ``SaleProceeds``, to be saved with the journal.

        Raises SaleAlreadyRecordedError if the order is booked already, InvalidSaleError for
        a bad amount or fee or allocations that do not sum to the amount."""
        check_text("the order id", order_id, most=MAX_TEXT, error=InvalidSaleError)
        if not _is_whole(amount_minor) or amount_minor <= 0:
            raise InvalidSaleError(f"order {order_id}: amount must be positive minor units")
        fee = 0 if stripe_fee_minor is None else stripe_fee_minor
        if not _is_whole(fee) or not 0 <= fee <= amount_minor:
            raise InvalidSaleError(f"order {order_id}: fee {fee!r} not within 0 and the amount")
        if received_on is None:
            received_on = datetime.now(timezone.utc).date()
        _check_day(received_on, "received_on", InvalidSaleError)
        owed = self._payables(order_id, amount_minor, allocations)
        if exists(sale_proceeds_id(self.currency, order_id)):
            raise SaleAlreadyRecordedError(f"order {order_id} is recorded already", order_id)
        postings = [Posting(CASH, amount_minor - fee), Posting(PAYMENT_FEES, fee)]
        postings += [Posting(account, -minor) for account, minor in owed.items()]
        entry = JournalEntry(SALE, order_id, received_on,
                             tuple(posting for posting in postings if posting.amount), project)
        self._sale_recorded(entry)
        return SaleProceeds(self.currency, entry)

    def record_refund(self, sale: SaleProceeds, refunded_on: date,
                      amount_minor: int | None = None) -> JournalEntry:
        """Gives a sale back, all that is left of it or ``amount_minor`` of it: its entry's
        lines reversed in proportion (``JournalEntry.reversed_in_part``), so each payee's
        allocation from it is withdrawn by the same benefit-sharing split, and the sale
        marked refunded once nothing is left (save it with the journal). What was already
        paid out stays paid: the payee's ``owed`` goes below zero and is netted against its
        next sales (the policy in README). Raises InvalidSaleError for a sale of another
        journal or an amount not within 1 and what is left, SaleAlreadyRecordedError if it
        was refunded already."""
        _check_day(refunded_on, "refunded_on", InvalidSaleError)
        if not isinstance(sale, SaleProceeds):
            raise InvalidSaleError(f"a refund reverses a booked sale, not {sale!r}")
        if sale.currency != self.currency:
            raise InvalidSaleError(f"order {sale.order_id} was booked in {sale.currency}, "
                                   f"not {self.currency}")
        if sale.refunded:
            raise SaleAlreadyRecordedError(f"order {sale.order_id} is refunded already",
                                           sale.order_id)
        left = sale.amount_minor - sale.refunded_minor
        amount = left if amount_minor is None else amount_minor
        if not _is_whole(amount) or not 0 < amount <= left:
            raise InvalidSaleError(f"order {sale.order_id}: cannot refund {amount!r} of the "
                                   f"{self._show(left)} left of it")
        if sale.refunded_minor == 0 and amount == left:
            entry = sale.entry.reversed(refunded_on)
        else:
            entry = sale.entry.reversed_in_part(amount, sale.reversed_lines, refunded_on)
            sale._partly_refunded(entry)
        self._refund_recorded(entry)
        if amount == left:
            sale._refunded(refunded_on)  # only here: a sale is refunded with its reversal
        return entry

    def _payables(self, order_id: str, amount_minor: int, allocations: Sequence[Allocation]
                  ) -> dict[str, int]:
        payables: dict[str, int] = {}
        for allocation in allocations:
            if not isinstance(allocation, Allocation):
                raise InvalidSaleError(f"order {order_id}: not an Allocation: {allocation!r}")
            _check_text(allocation.recipient, _RECIPIENT, "recipient", InvalidSaleError)
            if allocation.farm_code is not None:
                _check_text(allocation.farm_code, _CODE, "farm code", InvalidSaleError)
                if allocation.recipient != FARMERS:
                    raise InvalidSaleError(
                        f"order {order_id}: only the {FARMERS}' share goes to farms, not "
                        f"{allocation.recipient}'s"
                    )
            if not _is_whole(allocation.minor) or allocation.minor < 0:
                raise InvalidSaleError(f"order {order_id}: bad allocation {allocation!r}")
            account = payable_account(allocation.recipient, allocation.farm_code)
            payables[account] = payables.get(account, 0) + allocation.minor
        if (total := sum(payables.values())) != amount_minor:
            raise InvalidSaleError(
                f"order {order_id}: allocations sum to {self._show(total)}, not the "
                f"{self._show(amount_minor)} paid"
            )
        return payables

    def record_payout(self, recipient: str, farm_code: str | None, amount_minor: int,
                      paid_on: date, reference: str, *, exists: Callable[[UUID], bool]
                      ) -> Payout:
        """Books money paid to a recipient or farm; ``exists`` says whether the store holds
        an aggregate. Returns the ``Payout``, to be saved with the journal. Raises
        InvalidPayoutError for a non-positive amount or a malformed date, reference or payee,
        OverpaidError for more than is owed, PayoutAlreadyRecordedError for a reference used
        for this payee before, and UnknownRecipientError or UnknownFarmError for a payee
        never allocated anything."""
        check_text("the payout reference", reference, most=MAX_TEXT, error=InvalidPayoutError)
        if not _is_whole(amount_minor) or amount_minor <= 0:
            raise InvalidPayoutError(f"payout {reference}: amount must be positive minor units")
        _check_day(paid_on, "paid_on", InvalidPayoutError)
        _check_text(recipient, _RECIPIENT, "recipient", InvalidPayoutError)
        if farm_code is not None:
            _check_text(farm_code, _CODE, "farm code", InvalidPayoutError)
        account = payable_account(recipient, farm_code)
        if account not in self.credits:
            if farm_code is None:
                raise UnknownRecipientError(f"nothing was ever allocated to {recipient!r}")
            raise UnknownFarmError(f"nothing was ever allocated to farm {farm_code!r}")
        if exists(payout_id(self.currency, account, reference)):
            raise PayoutAlreadyRecordedError(f"payout {reference} to {account} is recorded")
        if amount_minor > (owed := self.owed(recipient, farm_code)):
            raise OverpaidError(
                f"cannot pay {self._show(amount_minor)} to {account}: {self._show(owed)} is owed"
            )
        entry = JournalEntry(PAYOUT, reference, paid_on,
                             (Posting(account, amount_minor), Posting(CASH, -amount_minor)))
        self._payout_recorded(entry)
        return Payout(self.currency, account, entry)

    # Event bodies only assign state: they run again on every replay.
    @event("SaleRecorded")
    def _sale_recorded(self, entry: JournalEntry) -> None:
        self._count(entry)

    @event("PayoutRecorded")
    def _payout_recorded(self, entry: JournalEntry) -> None:
        self._count(entry)

    @event("RefundRecorded")
    def _refund_recorded(self, entry: JournalEntry) -> None:
        self._count(entry)

    def _count(self, entry: JournalEntry) -> None:
        """Adds an entry to the running totals, in place."""
        for posting in entry.postings:
            amount = posting.amount
            _add(self.debits if amount > 0 else self.credits, posting.account, abs(amount))
            if entry.kind == REFUND and amount > 0 and payee_of(posting.account):
                _add(self.withdrawn, posting.account, amount)
        if entry.project is not None and entry.kind != PAYOUT:
            _add(self.by_project, entry.project, entry.allocated)


def _add(totals: dict[str, int], key: str, amount: int) -> None:
    totals[key] = totals.get(key, 0) + amount


class SaleProceeds(Aggregate):
    """One order's sale in a currency's journal: its entry (what a refund reverses, and where
    a certificate says the money went) and whether it was refunded. Named by currency and
    order, so the store refuses a second booking of the order."""

    @staticmethod
    def create_id(currency: str, entry: JournalEntry, **_: object) -> UUID:
        return sale_proceeds_id(currency, entry.reference)

    @event("Booked")
    def __init__(self, currency: str, entry: JournalEntry):
        self.currency = currency
        self.entry = entry
        self.refunded_on: date | None = None
        self.reversed_lines: dict[str, int] = {}  # what partial refunds took from each line

    @property
    def order_id(self) -> str:
        return self.entry.reference

    @property
    def refunded(self) -> bool:
        return self.refunded_on is not None

    @property
    def amount_minor(self) -> int:
        return self.entry.allocated

    @property
    def refunded_minor(self) -> int:
        """What refunds gave back of the sale so far."""
        if self.refunded:
            return self.amount_minor
        return sum(minor for account, minor in self.reversed_lines.items() if payee_of(account))

    @event("PartlyRefunded")
    def _partly_refunded(self, entry: JournalEntry) -> None:
        lines = dict(self.reversed_lines)
        for posting in entry.postings:
            lines[posting.account] = lines.get(posting.account, 0) + abs(posting.amount)
        self.reversed_lines = lines

    def allocations(self) -> list[Allocation]:
        """Who the sale's money went to, as booked: one allocation per payee (a farm's
        share by its farm code), in the entry's order (by recipient, then farm)."""
        return [Allocation(*payee, -posting.amount) for posting in self.entry.postings
                if (payee := payee_of(posting.account)) is not None]

    @event("Refunded")
    def _refunded(self, refunded_on: date) -> None:
        self.refunded_on = refunded_on


class Payout(Aggregate):
    """A payout in a currency's journal. Named by currency, payee account and the payout's
    reference, so the store refuses that reference a second time for the payee."""

    @staticmethod
    def create_id(currency: str, account: str, entry: JournalEntry, **_: object) -> UUID:
        return payout_id(currency, account, entry.reference)

    @event("Recorded")
    def __init__(self, currency: str, account: str, entry: JournalEntry):
        self.currency = currency
        self.account = account
        self.entry = entry


_TOTALS = {"debits": "debits of", "credits": "credits of", "withdrawn": "withdrawn from",
           "by_project": "allocated to project"}


def validate_balanced(journal: ProceedsLedger, entries: Iterable[JournalEntry]) -> list[str]:
    """Every way a journal fails to balance against its ``entries`` (all of them, in recording
    order, as the market's view lists them), for an auditor; empty when it balances: entries
    whose debits and credits differ, a sale, refund or payout booked twice, a refund of no
    sale, running totals that disagree with the entries, payees paid more than sales
    allocated them."""
    problems = []
    counted = ProceedsLedger.open(journal.currency)  # the entries counted again from scratch
    booked: set[tuple] = set()
    sold: dict[str, int] = {}  # each sale's amount, and what refunds gave back of it
    refunded: dict[str, int] = {}
    allocated: dict[str, int] = {}
    paid: dict[str, int] = {}
    for entry in entries:
        if difference := sum(posting.amount for posting in entry.postings):
            problems.append(f"{entry.kind} {entry.reference} on {entry.on}: debits and "
                            f"credits differ by {difference}")
        payees = [posting for posting in entry.postings if payee_of(posting.account)]
        key = (entry.kind, entry.reference,
               frozenset(p.account for p in payees) if entry.kind == PAYOUT else None)
        if entry.kind == REFUND:  # a sale may be refunded in parts, never beyond itself
            if (SALE, entry.reference, None) not in booked:
                problems.append(f"refund {entry.reference} reverses no sale booked before it")
            refunded[entry.reference] = refunded.get(entry.reference, 0) - entry.allocated
            if refunded[entry.reference] > sold.get(entry.reference, 0):
                problems.append(f"refunds of {entry.reference} exceed its sale")
        elif key in booked:
            problems.append(f"{entry.kind} {entry.reference} is booked more than once")
        if entry.kind == SALE:
            sold[entry.reference] = entry.allocated
        booked.add(key)
        counted._count(entry)
        totals = paid if entry.kind == PAYOUT else allocated if entry.kind == SALE else {}
        for posting in payees:
            _add(totals, posting.account, abs(posting.amount))
    for name, what in _TOTALS.items():
        kept, found = getattr(journal, name), getattr(counted, name)
        for key in sorted(set(kept) | set(found)):
            if kept.get(key, 0) != found.get(key, 0):
                problems.append(f"{what} {key}: total {kept.get(key, 0)}, "
                                f"entries {found.get(key, 0)}")
    if (total_debits := sum(journal.debits.values())) != sum(journal.credits.values()):
        problems.append(f"total debits {total_debits} != total credits "
                        f"{sum(journal.credits.values())}")
    # Payouts beyond what sales allocated are an error; beyond what is left after a refund
    # they are not (the payee owes it back from its next sales).
    for account, amount in sorted(paid.items()):
        if amount > allocated.get(account, 0):
            problems.append(f"{account} was paid {amount}, more than the "
                            f"{allocated.get(account, 0)} allocated")
    return problems
