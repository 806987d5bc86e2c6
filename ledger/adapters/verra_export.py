"""Reads the VCU export of Verra's registry search (CSV) one row at a time, in constant memory.

Each row becomes an ``ExportRow`` (a block of Verra units, active or retired at Verra) or a
``RefusedRow`` saying exactly why it cannot be taken; with a project id, the rows of other
projects become a light ``SkippedRow`` without further checks. A file that is not such an
export at all (no header, missing columns, not UTF-8 text, a line of absurd length) raises
``ExportFormatError``.

Dates are ISO (``2026-04-03``), as in Verra's exports. A slash date such as ``03/04/2026`` is
refused: day-first or month-first cannot be told from the text, and a spreadsheet that
re-saved the file may have written either.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator, TextIO

from ledger.domain.errors import InvalidCommandError, LedgerError
from ledger.domain.text import check_printable
from ledger.domain.verra import VerraSerial, kapok_labels, parse_verra_serial, verra_sdgs

EXPORT_COLUMNS = (
    "Issuance Date", "Sustainable Development Goals", "Vintage Start", "Vintage End", "ID",
    "Name", "Country/Area", "Project Type", "Methodology", "Total Vintage Quantity",
    "Quantity Issued", "Serial Number", "Additional Certifications",
    "Retirement/Cancellation Date", "Retirement Beneficiary", "Retirement Reason",
    "Retirement Details",
)
# The longest physical line read: far above any real row, low enough that a file without line
# breaks cannot fill memory. The csv module's own field limit (131,072) bounds quoted fields.
MAX_LINE = 1 << 20
# Free text longer than this is refused (Kapok's retirement records keep at most 500).
MAX_TEXT = 500
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_QUANTITY = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})*|[0-9]{1,18}", re.ASCII)
_PROJECT_ID = re.compile(r"(?:VCS-?)?([0-9]{1,10})", re.ASCII | re.IGNORECASE)


# A project's rows repeat the same few certification and SDG cells: read each once.
_labels = functools.lru_cache(maxsize=256)(kapok_labels)
_sdgs = functools.lru_cache(maxsize=256)(verra_sdgs)


class ExportFormatError(InvalidCommandError):
    """The file is not a VCU export of Verra's registry: nothing in it can be read."""


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One block of Verra units as the export lists it; ``line`` is the file's line (the
    header is line 1) where the row starts."""

    line: int
    project_id: int
    name: str
    country_area: str
    project_type: str
    methodology: str
    issuance_date: date
    vintage_start: date
    vintage_end: date
    vintage: int
    total_vintage_quantity: int
    quantity: int
    serial: VerraSerial
    labels: tuple[str, ...]
    sdgs: tuple[int, ...]
    retired_on: date | None
    beneficiary: str
    reason: str
    details: str

    @property
    def retired(self) -> bool:
        """Retired or cancelled at Verra (the export does not tell the two apart)."""
        return self.retired_on is not None


@dataclass(frozen=True, slots=True)
class RefusedRow:
    """A row that cannot be taken, with its serial as written and why."""

    line: int
    serial: str
    why: str


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row of another project than the one asked for, not checked further."""

    line: int
    project_id: int


class _RowError(InvalidCommandError):
    """Why one row is refused (never leaves this module)."""


def read_export(stream: TextIO, project_id: int | None = None
                ) -> Iterator[ExportRow | RefusedRow | SkippedRow]:
    """The export's rows in file order. Open the file with ``newline=""`` (the csv module's
    advice; quoted fields may hold line breaks) and ``encoding="utf-8"`` or ``"utf-8-sig"``.
    Raises ExportFormatError, possibly after some rows, when the file is not a Verra export."""
    lines = _Lines(stream)
    reader = csv.reader(lines, strict=True)
    columns, width = _header(reader)
    while True:
        start = lines.count + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ExportFormatError(f"line {start}: not CSV: {error}") from None
        if not any(cell.strip() for cell in cells):
            continue
        yield _row(start, cells, columns, width, project_id)


class _Lines:
    """The stream's lines, counted, each at most MAX_LINE characters, decoding errors named."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = self.stream.readline(MAX_LINE + 1)
        except UnicodeDecodeError as error:
            # Decoding runs ahead by a chunk: the bad byte is on this line or a later one.
            raise ExportFormatError(
                f"the file is not UTF-8 text ({error.reason} at or after line "
                f"{self.count + 1})") from None
        if not line:
            raise StopIteration
        if len(line) > MAX_LINE:
            raise ExportFormatError(
                f"line {self.count + 1} is longer than {MAX_LINE:,} characters: not a Verra "
                "export")
        self.count += 1
        return line


def _header(reader) -> tuple[dict[str, int], int]:
    """The position of each export column, and the number of columns, from the first row."""
    try:
        names = next(reader)
    except StopIteration:
        raise ExportFormatError("the file is empty: expected a Verra VCU export") from None
    except csv.Error as error:
        raise ExportFormatError(f"line 1: not CSV: {error}") from None
    names = [name.strip() for name in names]
    if names:
        names[0] = names[0].removeprefix("\ufeff").strip()
    missing = [name for name in EXPORT_COLUMNS if name not in names]
    if missing:
        raise ExportFormatError(
            "not a Verra VCU export: the header lacks the column(s) "
            + ", ".join(repr(name) for name in missing))
    twice = sorted({name for name in EXPORT_COLUMNS if names.count(name) > 1})
    if twice:
        raise ExportFormatError("the header names the column(s) " + ", ".join(
            repr(name) for name in twice) + " twice")
    return {name: names.index(name) for name in EXPORT_COLUMNS}, len(names)


def _row(line: int, cells: list[str], columns: dict[str, int], width: int,
         project_id: int | None) -> ExportRow | RefusedRow | SkippedRow:
    position = columns["Serial Number"]
    serial = cells[position].strip() if position < len(cells) else ""
    if len(cells) != width:
        return RefusedRow(line, serial[:200], f"the row has {len(cells)} fields, the header "
                                              f"{width}")
    try:
        # Only the ID is read from another project's row: those are counted, not checked.
        row_project = _project_id(cells[columns["ID"]].strip())
        if project_id is not None and row_project != project_id:
            return SkippedRow(line, row_project)
        cell = {name: cells[at].strip() for name, at in columns.items()}
        return _checked_row(line, cell, row_project)
    except LedgerError as error:
        return RefusedRow(line, serial[:200], str(error))


def _checked_row(line: int, cell: dict[str, str], project_id: int) -> ExportRow:
    try:
        serial = parse_verra_serial(cell["Serial Number"])
    except LedgerError as error:
        raise _RowError(f"the serial number: {error}") from None
    quantity = _quantity("Quantity Issued", cell["Quantity Issued"])
    if quantity < 1:
        raise _RowError("Quantity Issued must be at least 1")
    if serial.quantity != quantity:
        raise _RowError(
            f"the serial range {serial.first}-{serial.last} holds {serial.quantity:,} units "
            f"but Quantity Issued is {quantity:,}")
    if serial.project_id != project_id:
        raise _RowError(f"the serial names project {serial.project_id}, the ID column "
                        f"{project_id}")
    vintage_start = _date("Vintage Start", cell["Vintage Start"])
    vintage_end = _date("Vintage End", cell["Vintage End"])
    if (vintage_start, vintage_end) != (serial.vintage_start, serial.vintage_end):
        raise _RowError(
            f"the vintage {vintage_start} to {vintage_end} differs from the serial's "
            f"{serial.vintage_start} to {serial.vintage_end}")
    retired = cell["Retirement/Cancellation Date"]
    text = {name: _text(name, cell[name], multiline=name == "Retirement Details")
            for name in ("Name", "Country/Area", "Project Type", "Methodology",
                         "Retirement Beneficiary", "Retirement Reason", "Retirement Details")}
    try:
        labels = _labels(cell["Additional Certifications"])
        sdgs = _sdgs(cell["Sustainable Development Goals"])
    except LedgerError as error:
        raise _RowError(str(error)) from None
    return ExportRow(
        line=line, project_id=project_id, name=text["Name"],
        country_area=text["Country/Area"], project_type=text["Project Type"],
        methodology=text["Methodology"],
        issuance_date=_date("Issuance Date", cell["Issuance Date"]),
        vintage_start=vintage_start, vintage_end=vintage_end, vintage=vintage_end.year,
        total_vintage_quantity=_quantity("Total Vintage Quantity",
                                         cell["Total Vintage Quantity"]),
        quantity=quantity, serial=serial, labels=labels, sdgs=sdgs,
        retired_on=_date("Retirement/Cancellation Date", retired) if retired else None,
        beneficiary=text["Retirement Beneficiary"], reason=text["Retirement Reason"],
        details=text["Retirement Details"])


def _project_id(value: str) -> int:
    match = _PROJECT_ID.fullmatch(value)
    if not match:
        raise _RowError(f"ID {value[:40]!r} is not a Verra project id")
    return int(match[1])


def _quantity(column: str, value: str) -> int:
    """A whole number of units, with or without thousands separators ("28,571")."""
    if not _QUANTITY.fullmatch(value):
        raise _RowError(f"{column} {value[:40]!r} is not a whole number of units")
    return int(value.replace(",", ""))


def _date(column: str, value: str) -> date:
    if not _ISO_DATE.fullmatch(value):
        hint = " (slash dates are ambiguous)" if "/" in value else ""
        raise _RowError(f"{column} {value[:40]!r} is not a date YYYY-MM-DD{hint}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a calendar date") from None


def _text(column: str, value: str, multiline: bool) -> str:
    if len(value) > MAX_TEXT:
        raise _RowError(f"{column} is longer than {MAX_TEXT} characters")
    if not value.isprintable():  # the common case, checked in C: no control character at all
        check_printable(column, value, multiline=multiline, error=_RowError)
    return value
