"""Retirements and cancellations: the records of serials taken out of circulation for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import InvalidCommandError
from ledger.domain.ids import named_id
from ledger.domain.serials import SerialBlock, total_quantity
from ledger.domain.text import check_printable

# Verra's retirement reasons; free text is kept in ``details``.
RETIREMENT_REASONS = (
    "Environmental Benefit",
    "Corporate Emissions Inventory Accounting",
    "Retirement for Person or Organization",
    "Other",
)
CLAIM_TYPES = ("offset", "contribution")
USES = ("voluntary", "compliance")
MAX_TEXT = 500


@dataclass(frozen=True)
class RetirementClaim:
    """On whose behalf and why credits are retired. The beneficiary becomes public."""

    beneficiary: str
    reason: str
    details: str = ""
    period_start: date | None = None
    period_end: date | None = None
    claim_type: str = "offset"
    use: str = "voluntary"

    def check(self) -> None:
        if not self.beneficiary.strip():
            raise InvalidCommandError("a retirement needs a beneficiary")
        if not self.reason.strip():
            raise InvalidCommandError("a retirement needs a reason")
        for name in ("beneficiary", "reason", "details"):
            if len(getattr(self, name)) > MAX_TEXT:
                raise InvalidCommandError(f"{name} is longer than {MAX_TEXT} characters")
            check_printable(name, getattr(self, name), multiline=name == "details")
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise InvalidCommandError("the claimed period ends before it starts")
        if self.claim_type not in CLAIM_TYPES:
            raise InvalidCommandError(f"claim type must be one of {', '.join(CLAIM_TYPES)}")
        if self.use not in USES:
            raise InvalidCommandError(f"use must be one of {', '.join(USES)}")


class Retirement(Aggregate):
    """Serials retired from an account on a beneficiary's behalf; final by construction, as
    retired serials leave every account."""

    @staticmethod
    def create_id(retirement_id: str, **_: object) -> UUID:
        return named_id("retirement", retirement_id)

    @event("Recorded")
    def __init__(
        self, retirement_id: str, account: str, blocks: tuple[SerialBlock, ...],
        claim: RetirementClaim,
    ):
        self.retirement_id = retirement_id
        self.account = account
        self.blocks = tuple(blocks)
        self.claim = claim

    @property
    def quantity(self) -> int:
        return total_quantity(self.blocks)


CANCELLATION = "cancellation"
REVERSAL = "reversal"  # a loss event: buffer units cancelled to make good lost carbon


class Cancellation(Aggregate):
    """Serials cancelled by an operator (or out of the buffer pool for a reversal)."""

    @staticmethod
    def create_id(cancellation_id: str, **_: object) -> UUID:
        return named_id("cancellation", cancellation_id)

    @event("Recorded")
    def __init__(
        self, cancellation_id: str, kind: str, account: str,
        blocks: tuple[SerialBlock, ...], reason: str, project: str | None,
    ):
        self.cancellation_id = cancellation_id
        self.kind = kind
        self.account = account
        self.blocks = tuple(blocks)
        self.reason = reason
        self.project = project

    @property
    def quantity(self) -> int:
        return total_quantity(self.blocks)
