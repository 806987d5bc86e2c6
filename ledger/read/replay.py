"""Replaying the event log from the first event into an in-memory picture of the registry.

Auditors rebuild every holding this way, at any past position, without trusting the read
model or the aggregates' snapshots. Memory follows the number of serial blocks, not the
number of events: events are streamed in pages and folded in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator
from uuid import UUID

from ledger.domain.accounts import STATUS_BY_KIND, Account
from ledger.domain.errors import InvalidSerialError, SerialsNotHeldError
from ledger.domain.issuance import Issuance
from ledger.domain.mirror import RETIRED, MirroredVintage, RegistryRange
from ledger.domain.retirements import Cancellation, Retirement
from ledger.domain.serials import BlockSet, SerialBlock, merge_blocks, total_quantity

PAGE_SIZE = 1000


@dataclass(frozen=True)
class Violation:
    """One broken rule, at the log position where it shows (None: the final state)."""

    rule: str
    message: str
    position: int | None = None

    def __str__(self) -> str:
        where = f"position {self.position}: " if self.position is not None else ""
        return f"{where}{self.rule}: {self.message}"


@dataclass
class IssuedBatch:
    batch: int
    project: str
    vintage: int
    first: int
    last: int
    buffer_quantity: int
    position: int

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1


@dataclass
class LedgerState:
    """Every account's blocks, every retired and cancelled block, every issued batch."""

    accounts: dict[UUID, tuple[str, str]] = field(default_factory=dict)  # id -> (name, kind)
    holdings: dict[str, BlockSet] = field(default_factory=dict)  # name -> blocks
    retired: dict[str, list[SerialBlock]] = field(default_factory=dict)  # retirement id -> blocks
    cancelled: dict[str, list[SerialBlock]] = field(default_factory=dict)
    batches: dict[int, IssuedBatch] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    versions: dict[UUID, int] = field(default_factory=dict)  # aggregate id -> last version
    unpaired: dict[tuple[str, str], tuple[str, list[SerialBlock], int]] = field(default_factory=dict)
    issued_parts: dict[int, list[SerialBlock]] = field(default_factory=dict)
    # Mirrored projects: the blocks imported from their registry's exports, per (batch, tail),
    # and the ranges those exports (or confirmations) showed retired there.
    imported: dict[tuple[int, str], BlockSet] = field(default_factory=dict)
    shown_retired: dict[tuple[int, str], list[tuple[int, int]]] = field(default_factory=dict)
    position: int = 0
    events: int = 0

    def apply(self, event, position: int) -> None:
        """Folds one domain event in; a move that cannot have happened becomes a violation
        at this position, and the fold goes on so that every violation is seen."""
        self.position, self.events = position, self.events + 1
        self._check_version(event, position)
        if isinstance(event, Account.Opened):
            self.accounts[event.originator_id] = (event.name, event.kind)
            self.holdings.setdefault(event.name, BlockSet())
        elif isinstance(event, Issuance.Issued):
            self.batches[event.batch] = IssuedBatch(
                event.batch, event.project, event.vintage, event.first, event.last,
                event.buffer_quantity, position,
            )
        elif isinstance(event, Account.Issued):
            self._check_issued(event, position)
            self._add(self._account_name(event, position), event.blocks, position)
        elif isinstance(event, Account.Imported):
            self._check_imported(event, position)
            self._add(self._account_name(event, position), event.blocks, position)
        elif isinstance(event, MirroredVintage.RangesRecorded):
            for row in map(RegistryRange.from_list, event.rows):
                if row.state == RETIRED:
                    self.shown_retired.setdefault((row.batch, row.tail), []).append(
                        (row.first, row.last))
        elif isinstance(event, Account.Received):
            name = self._account_name(event, position)
            self._pair(("transfer", event.transfer_id), "received", event.blocks, position)
            if self.accounts.get(event.originator_id, ("", ""))[1] != "quarantine":
                self._check_not_shown_retired(name, event.blocks, position)
            self._add(name, event.blocks, position)
        elif isinstance(event, Account.RetirementReturned):
            self._pair(("return", event.retirement_id), "returned", event.blocks, position)
            self._add(self._account_name(event, position), event.blocks, position)
        elif isinstance(event, Retirement.FailedAtRegistry):
            returned = self.retired.pop(event.retirement_id, [])
            self._pair(("return", event.retirement_id), "failed", returned, position)
        elif isinstance(event, (Account.Sent, Account.Retired, Account.Cancelled)):
            name = self._account_name(event, position)
            if isinstance(event, Account.Retired):
                self._check_not_shown_retired(name, event.blocks, position)
            self._remove(name, event.blocks, position)
            if isinstance(event, Account.Sent):
                self._pair(("transfer", event.transfer_id), "sent", event.blocks, position)
            else:
                self._pair(("record", _record_id(event)), "given up", event.blocks, position)
        elif isinstance(event, (Retirement.Recorded, Cancellation.Recorded)):
            record_id = _record_id(event)
            self._pair(("record", record_id), "recorded", event.blocks, position)
            target = self.retired if isinstance(event, Retirement.Recorded) else self.cancelled
            target[record_id] = list(event.blocks)

    def _pair(self, key: tuple[str, str], side: str, blocks, position: int) -> None:
        """Matches the two halves of a move (sent/received, given up/recorded), which are
        saved together but in either order."""
        # Blocks as sorted plain tuples: compared in C, not by the dataclass's methods.
        canonical = sorted([(b.vintage, b.batch, b.first, b.last, b.project, b.country, b.tail)
                            for b in blocks])
        other = self.unpaired.pop(key, None)
        if other is None:
            self.unpaired[key] = (side, canonical, position)
        elif other[0] == side or other[1] != canonical:
            self.violations.append(Violation(
                "moves_balance", f"{key[0]} {key[1]}: {side} serials do not match the "
                f"{other[0]} serials at position {other[2]}", position,
            ))

    def unfinished(self) -> list[Violation]:
        """Half-done moves at the end of the log: sent but never received, given up by an
        account without a retirement or cancellation record, or the other way round."""
        return [
            Violation("moves_balance", f"{kind} {key}: {side} but never matched", position)
            for (kind, key), (side, _, position) in self.unpaired.items()
        ]

    def _check_version(self, event, position: int) -> None:
        key = event.originator_id  # the UUID itself: str() per event costs more than a hash
        expected = self.versions.get(key, 0) + 1
        if event.originator_version != expected:
            self.violations.append(Violation(
                "versions_in_order", f"aggregate {key} has version {event.originator_version} "
                f"where {expected} was due", position,
            ))
        self.versions[key] = event.originator_version

    def _check_issued(self, event, position: int) -> None:
        for block in event.blocks:
            batch = self.batches.get(block.batch)
            if batch is None or not (batch.first <= block.first and block.last <= batch.last) \
                    or (batch.project, batch.vintage) != (block.project, block.vintage):
                self.violations.append(Violation(
                    "serials_were_issued", f"{block.serial} is not part of a recorded issuance",
                    position,
                ))
        try:
            self.issued_parts[event.issuance_batch] = merge_blocks(
                [*self.issued_parts.get(event.issuance_batch, []), *event.blocks])
        except InvalidSerialError:
            self.violations.append(Violation(
                "serials_issued_once", f"batch {event.issuance_batch} serials issued twice", position
            ))

    def _check_imported(self, event, position: int) -> None:
        """Each imported block is a registry's, and is imported once."""
        for block in event.blocks:
            if not block.mirrored:
                self.violations.append(Violation(
                    "serials_were_issued", f"{block.serial} imported without its registry's "
                    "serial", position))
                continue
            try:
                self.imported.setdefault((block.batch, block.tail), BlockSet()).add(block)
            except InvalidSerialError:
                self.violations.append(Violation(
                    "serials_issued_once", f"{block.serial} imported twice", position))

    def _check_not_shown_retired(self, name: str, blocks, position: int) -> None:
        """No serial is sold, transferred or retired in Kapok once its registry of record
        has shown it retired or cancelled."""
        for block in blocks:
            for first, last in self.shown_retired.get((block.batch, block.tail), ()):
                if block.mirrored and first <= block.last and block.first <= last:
                    self.violations.append(Violation(
                        "not_after_registry_retired",
                        f"{name} took serials {max(first, block.first)}-"
                        f"{min(last, block.last)} of batch {block.batch} after their registry "
                        "showed them retired", position))

    def _held(self, name: str) -> BlockSet:
        held = self.holdings.get(name)
        if held is None:
            held = self.holdings[name] = BlockSet()
        return held

    def _add(self, name: str, blocks, position: int) -> None:
        held = self._held(name)
        for block in blocks:
            try:
                held.add(block)
            except InvalidSerialError as error:
                self.violations.append(Violation("no_serial_in_two_places", f"{name}: {error}",
                                                 position))

    def _remove(self, name: str, blocks, position: int) -> None:
        held = self._held(name)
        for block in blocks:
            try:
                held.remove(block)
            except SerialsNotHeldError:
                self.violations.append(Violation(
                    "no_spending_unheld",
                    f"{name} gave away serials {block.first}-{block.last} it did not hold",
                    position,
                ))

    def _account_name(self, event, position: int) -> str:
        try:
            return self.accounts[event.originator_id][0]
        except KeyError:
            self.violations.append(Violation(
                "known_accounts", f"event for unopened account {event.originator_id}", position
            ))
            return str(event.originator_id)

    def _status_by_account(self) -> dict[str, str]:
        return {name: STATUS_BY_KIND.get(kind, "held") for name, kind in self.accounts.values()}

    def balances(self) -> list[dict]:
        """Rows like the read model's: account, project, vintage, status, quantity."""
        statuses = self._status_by_account()
        totals: dict[tuple, int] = {}
        for name, blocks in self.holdings.items():
            status = statuses.get(name, "held")
            for block in blocks:
                key = (name, block.project, block.vintage, status)
                totals[key] = totals.get(key, 0) + block.quantity
        return [
            {"account": a, "project": p, "vintage": v, "status": s, "quantity": q}
            for (a, p, v, s), q in sorted(totals.items()) if q
        ]

    def totals_by_status(self) -> dict[str, int]:
        statuses = self._status_by_account()
        totals = {"issued": sum(b.quantity for b in self.batches.values())
                  + sum(blocks.quantity for blocks in self.imported.values())}
        for name, blocks in self.holdings.items():
            status = statuses.get(name, "held")
            totals[status] = totals.get(status, 0) + blocks.quantity
        totals["retired"] = sum(total_quantity(b) for b in self.retired.values())
        totals["cancelled"] = sum(total_quantity(b) for b in self.cancelled.values())
        return totals


def _record_id(event) -> str:
    return getattr(event, "retirement_id", None) or event.cancellation_id


def stored_notifications(app, until_position: int | None = None,
                         page_size: int = PAGE_SIZE) -> Iterator:
    """Every stored event's record, in log order, streamed page by page."""
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=page_size, stop=until_position)
        if not page:
            return
        yield from page
        start = page[-1].id + 1


def stored_events(app, until_position: int | None = None, until: datetime | None = None,
                  page_size: int = PAGE_SIZE) -> Iterator[tuple[int, object]]:
    """(position, domain event) in log order, streamed page by page."""
    for notification in stored_notifications(app, until_position, page_size):
        event = app.mapper.to_domain_event(notification)
        if until is not None and event.timestamp > until:
            return
        yield notification.id, event


def replay(app, until_position: int | None = None, until: datetime | None = None,
           progress: Callable[[int], None] | None = None) -> LedgerState:
    """The registry as it stood at ``until_position`` / ``until`` (default: now)."""
    state = LedgerState()
    for position, event in stored_events(app, until_position, until):
        state.apply(event, position)
        if progress:
            progress(position)
    return state
