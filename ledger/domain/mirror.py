"""What Kapok knows of a project mirrored from another registry (Verra): the serial ranges it
has imported from that registry's exports, and which of them the registry shows retired.

Verra is the registry of record of these serials. Kapok records each range of an export once
(its origin is the range itself, so importing a file again changes nothing) and compares every
later export with what it knows. A mirrored vintage keeps, per batch, the ranges as sorted
plain integers: an export of a vintage may have many thousands of rows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import named_id

ACTIVE, RETIRED = "active", "retired"

# How a range of an export stands against what Kapok knows of its batch.
NEW = "new"  # no serial of it is known
KNOWN = "known"  # known as it is: the same range in the same state, or inside a known active one
RETIRED_INSIDE_ACTIVE = "retired-inside-active"  # shown retired where Kapok knew it active
CONFLICT = "conflict"  # it overlaps known ranges any other way


@dataclass(frozen=True, slots=True)
class RegistryRange:
    """One row of a registry's export: a batch's serials ``first``..``last`` and their state
    there. Beneficiary, reason and details are those of a retirement at the registry."""

    batch: int
    first: int
    last: int
    tail: str
    retired_on: date | None = None
    beneficiary: str = ""
    reason: str = ""
    details: str = ""

    @property
    def state(self) -> str:
        return RETIRED if self.retired_on else ACTIVE

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    def to_list(self) -> list:
        retired = self.retired_on.isoformat() if self.retired_on else None
        return [self.batch, self.first, self.last, self.tail, retired, self.beneficiary,
                self.reason, self.details]

    @classmethod
    def from_list(cls, values: list) -> RegistryRange:
        batch, first, last, tail, retired, beneficiary, reason, details = values
        return cls(int(batch), int(first), int(last), str(tail),
                   date.fromisoformat(retired) if retired else None,
                   beneficiary, reason, details)


def mirrored_vintage_id(project: str, vintage: int) -> UUID:
    return named_id("mirrored-vintage", f"{project.upper()}:{vintage}")


class MirroredVintage(Aggregate):
    """The ranges of one vintage of a mirrored project known from its registry's exports."""

    # A batch's lists are never changed in place once recorded (an event records new ones):
    # a command's copy of a vintage of many thousand batches is a shallow copy of the dict,
    # where a deep copy would cost more than the command.
    flat_containers = frozenset({"batches"})

    @staticmethod
    def create_id(project: str, vintage: int) -> UUID:
        return mirrored_vintage_id(project, vintage)

    @event("Started")
    def __init__(self, project: str, vintage: int):
        self.project = project
        self.vintage = vintage
        # str(batch) -> [firsts, lasts, states], sorted by first and disjoint; text keys and
        # lists, as a snapshot stores them
        self.batches: dict[str, list[list]] = {}

    def classify(self, row: RegistryRange) -> str:
        """How ``row`` stands against the known ranges of its batch: NEW, KNOWN,
        RETIRED_INSIDE_ACTIVE or CONFLICT."""
        firsts, lasts, states = self.batches.get(str(row.batch), ((), (), ()))
        at = bisect.bisect_right(firsts, row.last) - 1  # the last known range starting in it
        if at < 0 or lasts[at] < row.first:
            return NEW
        if not firsts[at] <= row.first:
            return CONFLICT  # it starts before a known range it overlaps
        if lasts[at] < row.last:
            return CONFLICT  # it runs past the known range holding its start
        if states[at] == row.state and (states[at] == ACTIVE
                                        or (firsts[at], lasts[at]) == (row.first, row.last)):
            return KNOWN
        if states[at] == ACTIVE:
            return RETIRED_INSIDE_ACTIVE
        return CONFLICT  # shown active where it was known retired, or a part of a retired row

    def known_ranges(self, batch: int, first: int, last: int) -> list[tuple[int, int, str]]:
        """The known (first, last, state) of ``batch`` that share a serial with first..last."""
        firsts, lasts, states = self.batches.get(str(batch), ((), (), ()))
        at = max(bisect.bisect_right(firsts, first) - 1, 0)
        found = []
        while at < len(firsts) and firsts[at] <= last:
            if lasts[at] >= first:
                found.append((firsts[at], lasts[at], states[at]))
            at += 1
        return found

    def shows_retired(self, batch: int, first: int, last: int) -> bool:
        """Whether the registry has shown exactly first..last of ``batch`` retired."""
        return (first, last, RETIRED) in self.known_ranges(batch, first, last)

    def record(self, rows: tuple[RegistryRange, ...], source: str) -> None:
        """Records new rows, and rows shown retired inside known active ranges. Each must
        have been classified NEW or RETIRED_INSIDE_ACTIVE against this vintage."""
        if rows:
            self._recorded(self.project, self.vintage, [row.to_list() for row in rows], source)

    # The project and vintage ride along for readers of the event alone (the read model).
    @event("RangesRecorded")
    def _recorded(self, project: str, vintage: int, rows: list[list], source: str) -> None:
        changed: dict[str, list[list]] = {}  # each batch the event changes, copied once
        for values in rows:
            row = RegistryRange.from_list(values)
            key = str(row.batch)
            if key not in changed:
                changed[key] = [list(part) for part in self.batches.get(key, ([], [], []))]
            firsts, lasts, states = changed[key]
            at = bisect.bisect_right(firsts, row.first) - 1
            if at >= 0 and lasts[at] >= row.first:  # retired inside an active range: split it
                first, last = firsts[at], lasts[at]
                pieces = [(first, row.first - 1, ACTIVE), (row.first, row.last, RETIRED),
                          (row.last + 1, last, ACTIVE)]
                pieces = [piece for piece in pieces if piece[0] <= piece[1]]
                firsts[at:at + 1] = [piece[0] for piece in pieces]
                lasts[at:at + 1] = [piece[1] for piece in pieces]
                states[at:at + 1] = [piece[2] for piece in pieces]
            else:
                firsts.insert(at + 1, row.first)
                lasts.insert(at + 1, row.last)
                states.insert(at + 1, row.state)
        self.batches.update(changed)


class RegistryCheck(Aggregate):
    """One reconciliation of a mirrored project with its registry's export: what differed,
    and how many pending retirements it confirmed. Recorded whatever it found."""

    @staticmethod
    def create_id(run_id: str, *_: object) -> UUID:
        return named_id("registry-check", run_id)

    @event("Recorded")
    def __init__(self, run_id: str, project: str, source: str, differences: tuple,
                 confirmed: int):
        self.run_id = run_id
        self.project = project
        self.source = source
        self.differences = list(differences)
        self.confirmed = confirmed

    @property
    def in_step(self) -> bool:
        return not self.differences
