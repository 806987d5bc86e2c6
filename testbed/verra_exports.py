"""Writes VCU exports in Verra's format of any size, streaming, for tests and the benchmark.

Serials come from one registry-wide counter, so no two rows overlap; every few batches are
split into a retired and an active row, as a partial retirement at Verra leaves them.
"""

from __future__ import annotations

import csv
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from ledger.adapters.verra_export import EXPORT_COLUMNS

TAMBOPATA = ("Reduction of Deforestation and Degradation in Tambopata National Reserve and "
             "Bahuaja-Sonene National Park within the area of Madre de Dios Region - Peru")
# (name, Country/Area, ISO-2, sectoral scope) of the projects the writer knows.
PROJECTS = {
    1067: (TAMBOPATA, "Peru", "PE", 14),
    3005: ("Illustrative Wind Power Project, Inner Mongolia", "China", "CN", 1),
    641: ("Illustrative Savanna Burning Project", "Australia", "AU", 14),
}
VINTAGES = (2019, 2020, 2021, 2022, 2023)
FIRST_SERIAL = 500_000_001
FIRST_BATCH = 20_001


@dataclass(frozen=True, slots=True)
class WrittenExport:
    """What ``write_export`` wrote: every row, and those of the project asked for."""

    rows: int
    project_rows: int
    project_tonnes: int
    retired_rows: int
    retired_tonnes: int


def write_export(target: str | Path | TextIO, rows: int, project_id: int = 1067,
                 retired_every: int = 4, other_projects: Sequence[int] = (3005,),
                 other_every: int = 10) -> WrittenExport:
    """Writes a valid export of exactly ``rows`` rows to a path or an open text stream: every
    ``retired_every``-th batch of the project split into a retired and an active row, every
    ``other_every``-th batch one of ``other_projects``'. Constant memory at any size."""
    counts = {"rows": 0, "project_rows": 0, "project_tonnes": 0, "retired_rows": 0,
              "retired_tonnes": 0}

    def generated():
        serial, index = FIRST_SERIAL, 0
        while counts["rows"] < rows:
            other = bool(other_projects and other_every
                         and index % other_every == other_every - 1)
            project = other_projects[index // other_every % len(other_projects)] if other \
                else project_id
            size = 1_000 + index * 7_919 % 40_000
            split = (not other and retired_every and index % retired_every == 0
                     and rows - counts["rows"] >= 2)
            pieces = [(size // 5, True), (size - size // 5, False)] if split else [(size, False)]
            for quantity, retired in pieces:
                yield export_row(project, FIRST_BATCH + index, serial, serial + quantity - 1,
                                 VINTAGES[index % len(VINTAGES)], size, retired,
                                 old_format=index % 9 == 8)
                serial += quantity
                counts["rows"] += 1
                if project == project_id:
                    counts["project_rows"] += 1
                    counts["project_tonnes"] += quantity
                    counts["retired_rows"] += retired
                    counts["retired_tonnes"] += quantity if retired else 0
            index += 1

    write_rows(target, generated())
    return WrittenExport(**counts)


def write_rows(target: str | Path | TextIO, rows: Iterable[Sequence[str]]) -> None:
    """Writes the header and ``rows`` (cells in EXPORT_COLUMNS' order, e.g. from
    ``export_row``) as Verra's export does: quoted where needed, CRLF line ends."""
    with ExitStack() as stack:
        stream = target if hasattr(target, "write") else stack.enter_context(
            open(target, "w", encoding="utf-8", newline=""))
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(rows)


def verra_serial_text(project: int, batch: int, first: int, last: int, vintage: int,
                      old_format: bool = False) -> str:
    """A serial in Verra's 13-part format (12-part, without the program, if ``old_format``)
    for a calendar-year vintage of one of PROJECTS."""
    _, _, country, scope = PROJECTS[project]
    program = "" if old_format else "VCS-"
    return (f"{batch}-{first}-{last}-{program}VCU-263-VER-{country}-{scope}-{project}"
            f"-0101{vintage}-3112{vintage}-1")


def export_row(project: int, batch: int, first: int, last: int, vintage: int,
               vintage_total: int, retired: bool, old_format: bool = False) -> list[str]:
    """One row of the export, its cells in EXPORT_COLUMNS' order."""
    name, country_area, _, _ = PROJECTS[project]
    issued = date(vintage + 2, 3, 1 + batch % 28)
    return [
        issued.isoformat(), "13: Climate Action; 15: Life on Land",
        date(vintage, 1, 1).isoformat(), date(vintage, 12, 31).isoformat(), str(project), name,
        country_area, "Agriculture Forestry and Other Land Use", "VM0007",
        f"{vintage_total:,}", f"{last - first + 1:,}",
        verra_serial_text(project, batch, first, last, vintage, old_format),
        "CCB-Biodiversity Gold",
        date(vintage + 3, 6, 30).isoformat() if retired else "",
        f"Buyer {batch}, Lima" if retired else "",
        "Retirement for Person or Organization" if retired else "",
        f"Offsetting {vintage + 3} emissions of buyer {batch}" if retired else "",
    ]
