"""Retirements and cancellations: the records of serials taken out of circulation for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import InvalidCommandError, RegistryPhaseError
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
# Where a retirement of serials mirrored from another registry stands at that registry: locked
# in Kapok and pending there, then confirmed (the registry retired them) or failed (it refused:
# the credits went back to the account they came from). None for Kapok's own serials.
PENDING, CONFIRMED, FAILED = "pending", "confirmed", "failed"
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
        self.registry_phase = PENDING if any(block.mirrored for block in blocks) else None
        self.registry_serials: tuple[str, ...] = ()
        self.registry_date: date | None = None
        self.failure = ""

    @property
    def quantity(self) -> int:
        return total_quantity(self.blocks)

    @property
    def pending(self) -> bool:
        return self.registry_phase == PENDING

    def _check_pending(self) -> None:
        if self.registry_phase is None:
            raise RegistryPhaseError(
                f"retirement {self.retirement_id} retired Kapok's own serials: it is final "
                "and has nothing to confirm at another registry")
        if self.registry_phase != PENDING:
            raise RegistryPhaseError(
                f"retirement {self.retirement_id} is already {self.registry_phase} at the "
                "registry")

    def confirm(self, registry_serials: tuple[str, ...], on: date, by: str) -> None:
        """The registry of record retired these serials (the caller has matched them)."""
        self._check_pending()
        self._confirmed(self.retirement_id, tuple(registry_serials), on, by)

    def fail(self, reason: str, by: str) -> None:
        """The registry refused the retirement; the caller returns the credits."""
        self._check_pending()
        if not reason.strip():
            raise InvalidCommandError("say why the registry refused the retirement")
        check_printable("reason", reason)
        if len(reason) > MAX_TEXT:
            raise InvalidCommandError(f"the reason is longer than {MAX_TEXT} characters")
        self._failed(self.retirement_id, reason.strip(), by)

    # The retirement id rides along for readers of the event alone (the read model).
    @event("ConfirmedAtRegistry")
    def _confirmed(self, retirement_id: str, registry_serials: tuple[str, ...], on: date,
                   by: str) -> None:
        self.registry_phase = CONFIRMED
        self.registry_serials = tuple(registry_serials)
        self.registry_date = on

    @event("FailedAtRegistry")
    def _failed(self, retirement_id: str, reason: str, by: str) -> None:
        self.registry_phase = FAILED
        self.failure = reason


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
