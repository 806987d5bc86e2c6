"""Importing a mirrored project's blocks from its registry of record's export (Verra's).

An import reads the export twice: once to check every row against the others and against what
Kapok knows, and, only if no row was refused, again to record the new rows in chunks. A row's
origin is its serial range, so an import that stops half-way (a crash, a lost connection) is
finished by running it again: the rows recorded are known and the rest are new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Callable, Iterable

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.accounts import HOLDING, INVENTORY, Account, check_account_name
from ledger.domain.errors import (InvalidCommandError, MirroredProjectError,
                                  RegistryMismatchError, UnknownAccountError,
                                  UnknownProjectError)
from ledger.domain.ids import public_id
from ledger.domain.mirror import (CONFLICT, KNOWN, NEW, RETIRED_INSIDE_ACTIVE, MirroredVintage,
                                  RegistryRange, mirrored_vintage_id)
from ledger.domain.projects import VERRA, Project, ProjectDetails, Vintage
from ledger.domain.retirements import CONFIRMED
from ledger.domain.serials import SerialBlock

VERRA_HOLDING = "ecosphere-verra"  # Ecosphere+'s holding account at Verra, mirrored
CHUNK_ROWS = 2_000  # rows recorded per save: bounded events, bounded memory


def verra_number(registry_id: str) -> int:
    """1067 for ``VCS-1067``; raises InvalidCommandError for anything else."""
    prefix, _, number = (registry_id or "").strip().upper().partition("-")
    if prefix != "VCS" or not number.isdigit() or not 0 < int(number) < 10**9:
        raise InvalidCommandError(
            f"invalid project {registry_id!r}: a project mirrored from Verra is VCS-<id>, "
            "e.g. VCS-1067")
    return int(number)


ROW, REFUSED, SKIPPED = "row", "refused", "skipped"


def row_kind(row, number: int) -> str:
    """What the export reader (``ledger.adapters.verra_export``) made of a row: one of the
    project's blocks (ROW), a row it refused (REFUSED), or another project's (SKIPPED)."""
    if hasattr(row, "why"):
        return REFUSED
    if not hasattr(row, "vintage") or row.project_id != number:
        return SKIPPED
    return ROW


def registry_range(row) -> RegistryRange:
    """The range an export's row (``ledger.adapters.verra_export.ExportRow``) describes."""
    serial = row.serial
    return RegistryRange(serial.batch, serial.first, serial.last, serial.tail, row.retired_on,
                         row.beneficiary, row.reason, row.details)


def mirrored_block(registry_id: str, row) -> SerialBlock:
    serial = row.serial
    return SerialBlock(row.vintage, serial.batch, serial.first, serial.last, registry_id,
                       serial.country, serial.tail)


@dataclass
class ImportReport:
    project: str
    rows: int = 0
    skipped: int = 0
    blocks_new: int = 0
    blocks_known: int = 0
    tonnes_new: int = 0
    retired_at_verra: int = 0
    confirmed: list[str] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)

    def refuse(self, line: int, serial: str, why: str) -> None:
        self.refused.append({"line": line, "serial": serial, "why": why})

    def as_dict(self) -> dict:
        return {"project": self.project, "rows": self.rows, "skipped": self.skipped,
                "blocks_new": self.blocks_new, "blocks_known": self.blocks_known,
                "tonnes_new": self.tonnes_new, "retired_at_verra": self.retired_at_verra,
                "confirmed": self.confirmed,
                "refused": sorted(self.refused, key=lambda refusal: refusal["line"])}


class RegistryImports:
    """Use cases of mirrored projects' imports (needs ``self.store``, ``self.view``,
    ``get_project``, ``get_account`` and the retirements' ``pending_registry_blocks``)."""

    def import_registry_export(self, read_rows: Callable[[], Iterable], registry_id: str,
                               account: str | None = None) -> dict:
        """Records the rows of a Verra export (``read_rows()`` reads them afresh each time)
        for project ``registry_id``: active blocks as held in ``account``, retired ones as
        retired at Verra. Returns the report; nothing is written when a row is refused.
        Raises InvalidCommandError, MirroredProjectError."""
        registry_id = registry_id.strip().upper()
        number = verra_number(registry_id)
        self._check_mirrorable(registry_id)
        if account is not None:
            check_account_name(account)
        pending = self.pending_registry_blocks()
        report, first_row, vintages, known = self._check_export(read_rows(), number,
                                                                registry_id, pending)
        if report.refused or first_row is None:
            return report.as_dict() | {"blocks_new": 0, "tonnes_new": 0,
                                       "retired_at_verra": 0, "confirmed": []}
        holder = self._mirrored_project(registry_id, first_row, vintages, account)
        import_id = public_id("KAP-IMP")
        chunk: list = []
        confirmed: list[str] = []  # the pending retirements the rows confirmed
        for row in read_rows():
            # Rows known as they are when checked are left out (each command checks again
            # what it records): importing a file again reads it and writes nothing.
            if row_kind(row, number) == ROW and standing_of(known.get(row.vintage), row) != KNOWN:
                chunk.append(row)
            if len(chunk) == CHUNK_ROWS:
                confirmed += self._record_rows(chunk, registry_id, holder, import_id,
                                               pending)
                chunk = []
        confirmed += self._record_rows(chunk, registry_id, holder, import_id, pending)
        report.confirmed = list(dict.fromkeys(confirmed))
        return report.as_dict()

    def _check_mirrorable(self, registry_id: str) -> None:
        try:
            project = self.get_project(registry_id)
        except UnknownProjectError:
            return
        if not project.details.mirrored:
            raise MirroredProjectError(
                f"project {registry_id} is Kapok's own (Kapok issues its serials): it cannot "
                "be mirrored from Verra")

    def _check_export(self, rows: Iterable, number: int, registry_id: str, pending: dict):
        """The first pass: every row checked, nothing written."""
        report = ImportReport(registry_id)
        ranges_by_batch: dict[tuple[int, str], list[tuple[int, int, int]]] = defaultdict(list)
        known: dict[int, MirroredVintage | None] = {}
        vintages: dict[int, set[str]] = defaultdict(set)
        first_row = None
        for row in rows:
            kind = row_kind(row, number)
            if kind == SKIPPED:
                report.skipped += 1
                continue
            report.rows += 1
            if kind == REFUSED:
                report.refuse(row.line, row.serial, row.why)
                continue
            first_row = first_row or row
            vintages[row.vintage].update(row.labels)
            ranges_by_batch[row.serial.batch, row.serial.tail].append(
                (row.serial.first, row.serial.last, row.line))
            if row.vintage not in known:
                known[row.vintage] = self._mirrored_vintage(registry_id, row.vintage)
            self._count(report, row, known[row.vintage], pending)
        for (batch, _tail), ranges in ranges_by_batch.items():
            ranges.sort()
            for (_, last, line), (first, _, later) in zip(ranges, ranges[1:]):
                if first <= last:
                    report.refuse(later, f"batch {batch}", f"its serials overlap line {line}'s")
        return report, first_row, vintages, known

    @staticmethod
    def _count(report: ImportReport, row, known: MirroredVintage | None, pending: dict) -> None:
        standing = standing_of(known, row)
        serial = row.serial.text
        if standing == KNOWN:
            report.blocks_known += 1
        elif standing == NEW and row.retired_on:
            report.retired_at_verra += 1
        elif standing == NEW:
            report.blocks_new += 1
            report.tonnes_new += row.quantity
        elif standing == RETIRED_INSIDE_ACTIVE and confirmed_retirement(pending, row):
            report.retired_at_verra += 1
        elif standing == RETIRED_INSIDE_ACTIVE:
            report.refuse(row.line, serial,
                          "Verra shows these serials retired, but Kapok holds them and has no "
                          "pending retirement of them for this beneficiary: run `kapok "
                          "registry reconcile` with this export")
        else:
            report.refuse(row.line, serial,
                          "it overlaps a block Kapok already knows, with other serials")

    def _mirrored_vintage(self, registry_id: str, vintage: int) -> MirroredVintage | None:
        try:
            return self.store.load(mirrored_vintage_id(registry_id, vintage))
        except AggregateNotFoundError:
            return None

    def _mirrored_project(self, registry_id: str, row, vintages: dict[int, set[str]],
                          account: str | None) -> str:
        """Registers the project, its vintages and the holding account, as needed, in one
        save; returns the holding account's name."""

        def command():
            try:
                project = self.get_project(registry_id)
            except UnknownProjectError:
                project = self.store.remember(_project_from(registry_id, row))
            for year, labels in sorted(vintages.items()):
                project.add_vintage(Vintage(year, tuple(sorted(labels))), today=date.today())
            name = account or project.details.inventory_account
            try:
                holder = self.get_account(name)
            except UnknownAccountError:
                holder = self.store.remember(Account(name, INVENTORY, "Ecosphere+ (at Verra)"))
            if holder.kind not in (INVENTORY, HOLDING):
                raise InvalidCommandError(
                    f"account {name} is a {holder.kind} account: Verra's blocks are held in "
                    "an inventory or holding account")
            return [project, holder], name

        return self.store.run("mirror_project", {}, None, command)

    def _record_rows(self, rows: list, registry_id: str, holder_name: str, import_id: str,
                     pending: dict) -> list[str]:
        """Records the rows in one save; returns the pending retirements they confirmed."""
        if not rows:
            return []

        def command():
            holder = self.get_account(holder_name)
            changed: dict = {}
            recorded: dict[int, list[RegistryRange]] = defaultdict(list)
            blocks = []
            confirmed: dict[str, list] = defaultdict(list)
            for row in rows:
                known = self._vintage_for(registry_id, row.vintage)
                changed[known.id] = known
                standing = known.classify(registry_range(row))
                if standing == KNOWN:
                    continue
                retirement_id = (confirmed_retirement(pending, row)
                                 if standing == RETIRED_INSIDE_ACTIVE else None)
                if standing == CONFLICT or (standing == RETIRED_INSIDE_ACTIVE
                                            and retirement_id is None):
                    raise RegistryMismatchError(
                        f"line {row.line}: what Kapok knows of {row.serial.text} changed "
                        "during the import; run it again")
                recorded[row.vintage].append(registry_range(row))
                if retirement_id is not None:
                    confirmed[retirement_id].append(row)
                elif not row.retired_on:
                    blocks.append(mirrored_block(registry_id, row))
            for vintage, ranges in recorded.items():
                self._vintage_for(registry_id, vintage).record(tuple(ranges), import_id)
            if blocks:
                holder.record_imported(blocks, import_id)
            done = []
            for retirement_id, shown in confirmed.items():
                key, retirement = self._confirmed_by(retirement_id, shown, f"import {import_id}")
                changed.setdefault(key, retirement)
                done += [retirement_id] if retirement.registry_phase == CONFIRMED else []
            # The holder last: its blocks follow the ranges recorded, in the log too.
            return [*changed.values(), holder], done

        return self.store.run("import_rows", {}, None, command)

    def _vintage_for(self, registry_id: str, vintage: int) -> MirroredVintage:
        return self.store.singleton(mirrored_vintage_id(registry_id, vintage),
                                    lambda: MirroredVintage(registry_id, vintage))

    def _confirmed_by(self, retirement_id: str, rows: list, note: str):
        """The retirement, confirmed once the registry has shown every one of its blocks
        retired: by ``rows`` (just recorded) or by an earlier export."""
        retirement = self.get_retirement(retirement_id)
        mirrored = [block for block in retirement.blocks if block.mirrored]
        if retirement.pending and all(
                self._vintage_for(block.project, block.vintage).shows_retired(
                    block.batch, block.first, block.last) for block in mirrored):
            retirement.confirm(tuple(block.serial for block in mirrored),
                               max(row.retired_on for row in rows), note)
        return retirement.id, retirement


def standing_of(known: MirroredVintage | None, row) -> str:
    """How an export's row stands against a vintage Kapok knows (NEW if it knows none)."""
    return known.classify(registry_range(row)) if known else NEW


def block_key(row) -> tuple[int, int, int]:
    """(batch, first, last) of an export's row, as ``pending_registry_blocks`` keys blocks."""
    return row.serial.batch, row.serial.first, row.serial.last


def confirmed_retirement(pending: dict, row) -> str | None:
    """The pending retirement whose block the row shows retired for its beneficiary."""
    found = pending.get(block_key(row))
    return found[0] if found is not None and _same_name(found[1], row.beneficiary) else None


def _same_name(one: str, other: str) -> bool:
    return " ".join(one.split()).casefold() == " ".join(other.split()).casefold()


_PROJECT_TYPES = {"redd": "REDD+", "agroforestry": "Agroforestry", "afforestation": "ARR",
                  "improved forest": "IFM"}


def _project_from(registry_id: str, row) -> Project:
    """A mirrored project as Verra's export describes it (its area is not in the export)."""
    kind = next((value for word, value in _PROJECT_TYPES.items()
                 if word in f"{row.project_type} {row.methodology}".lower()), "Other")
    details = ProjectDetails(
        registry_id=registry_id, name=row.name.strip() or registry_id, proponent="",
        country=row.serial.country, region=row.country_area, project_type=kind,
        methodology=row.methodology, area_ha=Decimal(0), sdgs=tuple(row.sdgs),
        labels=tuple(row.labels), inventory_account=VERRA_HOLDING, registry=VERRA)
    details.check()
    return Project(details)


