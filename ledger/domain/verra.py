"""Verra's serial numbers, and Verra's certification and SDG texts read as Kapok's labels.

A Verra serial names one block of Verified Carbon Units. Two formats occur::

    19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0   (13 parts)
    4147-176338408-176338907-VCU-016-MER-AU-14-641-16042012-15042013-0          (12 parts)

batch, first serial, last serial, [program,] unit type, internal code, VER or MER, country
(ISO-2), sectoral scope, project id, vintage start and end (DDMMYYYY), flag (1 when the batch
carries an additional certification). A partial transfer or retirement splits a block: the
pieces keep the batch and everything after the last serial (the *tail*).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date

from ledger.domain.errors import InvalidCommandError, InvalidSerialError
from ledger.domain.text import check_printable

# Real serials are under 80 characters; anything far longer is not a serial.
MAX_VERRA_SERIAL_TEXT = 160
_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)
_CODE = re.compile(r"[A-Z]{2,10}", re.ASCII)
_INTERNAL_CODE = re.compile(r"[0-9]{1,10}", re.ASCII)
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)
_SMALL_NUMBER = re.compile(r"[0-9]{1,2}", re.ASCII)
_DDMMYYYY = re.compile(r"[0-9]{8}", re.ASCII)
_KINDS = ("VER", "MER")
_PARTS_NEW, _PARTS_OLD = 13, 12


@dataclass(frozen=True, order=True, slots=True)
class VerraSerial:
    """Serials ``first``..``last`` (inclusive) of Verra batch ``batch``; ``tail`` is the printed
    serial after ``last-``, the other fields are the tail's parts. Build one with
    ``parse_verra_serial`` or ``VerraSerial.of``, which check that the parts match the tail."""

    batch: int
    first: int
    last: int
    tail: str
    program: str | None
    unit_type: str
    internal_code: str
    kind: str
    country: str
    scope: int
    project_id: int
    vintage_start: date
    vintage_end: date
    flag: int

    def __post_init__(self) -> None:
        if self.batch < 1 or self.first < 1 or self.last < self.first:
            raise InvalidSerialError(
                f"invalid Verra serial block {self.batch}: {self.first}-{self.last}")

    def __deepcopy__(self, memo) -> VerraSerial:
        return self  # immutable

    @classmethod
    def of(cls, batch: int, first: int, last: int, tail: str) -> VerraSerial:
        """The serial of that batch, range and tail (as stored): its parts read from ``tail``."""
        return parse_verra_serial(format_verra_serial(batch, first, last, tail))

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    @property
    def vintage(self) -> int:
        """Verra's vintage year: the year the vintage ends."""
        return self.vintage_end.year

    @property
    def text(self) -> str:
        """The serial as Verra prints it."""
        return format_verra_serial(self.batch, self.first, self.last, self.tail)

    def sub(self, first: int, last: int) -> VerraSerial:
        """The part of this block from ``first`` to ``last``, which must lie inside it."""
        if not (self.first <= first <= last <= self.last):
            raise InvalidSerialError(
                f"{first}-{last} is not inside Verra serial block {self.text}")
        return dataclasses.replace(self, first=first, last=last)


def verra_project_url(project_id: int) -> str:
    """The project's public page in Verra's registry."""
    return f"https://registry.verra.org/app/projectDetail/VCS/{int(project_id)}"


def format_verra_serial(batch: int, first: int, last: int, tail: str) -> str:
    """The printed serial of that batch, range and tail."""
    return f"{batch}-{first}-{last}-{tail}"


def parse_verra_serial(text: str) -> VerraSerial:
    """Reads a Verra serial in either format; raises InvalidSerialError saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidSerialError("a Verra serial must be text")
    shown = text[:100] + ("..." if len(text) > 100 else "")
    if len(text) > MAX_VERRA_SERIAL_TEXT:
        raise InvalidSerialError(
            f"Verra serial {shown!r} is too long: {len(text):,} characters, "
            f"at most {MAX_VERRA_SERIAL_TEXT}")
    parts = text.split("-")
    if len(parts) not in (_PARTS_NEW, _PARTS_OLD):
        raise InvalidSerialError(
            f"Verra serial {shown!r} has {len(parts)} parts separated by '-': expected 13 "
            "(batch-first-last-VCS-VCU-code-VER-country-scope-project-start-end-flag) or 12 "
            "(the older format, without the program)")
    if len(parts) == _PARTS_OLD:
        parts.insert(3, "")
    (batch, first, last, program, unit_type, internal_code, kind, country, scope, project,
     start, end, flag) = parts

    def need(pattern: re.Pattern, value: str, what: str) -> str:
        if not pattern.fullmatch(value):
            raise InvalidSerialError(f"Verra serial {shown!r}: {what} {value[:20]!r} is not "
                                     f"valid")
        return value

    numbers = [int(need(_DIGITS, value, what)) for value, what in
               ((batch, "the batch"), (first, "the first serial"), (last, "the last serial"))]
    if numbers[2] < numbers[1]:
        raise InvalidSerialError(f"Verra serial {shown!r}: the last serial {last} is before "
                                 f"the first {first}")
    if program:
        need(_CODE, program, "the program")
    need(_CODE, unit_type, "the unit type")
    need(_INTERNAL_CODE, internal_code, "the internal code")
    if kind not in _KINDS:
        raise InvalidSerialError(f"Verra serial {shown!r}: {kind[:20]!r} is neither VER nor MER")
    need(_COUNTRY, country, "the country")
    vintage_start = _ddmmyyyy(need(_DDMMYYYY, start, "the vintage start"), shown)
    vintage_end = _ddmmyyyy(need(_DDMMYYYY, end, "the vintage end"), shown)
    if vintage_end < vintage_start:
        raise InvalidSerialError(f"Verra serial {shown!r}: the vintage ends ({end}) before it "
                                 f"starts ({start})")
    if numbers[0] < 1 or numbers[1] < 1:
        raise InvalidSerialError(f"Verra serial {shown!r}: batch and serials start at 1")
    tail = text.split("-", 3)[3]
    return VerraSerial(
        numbers[0], numbers[1], numbers[2], tail, program or None, unit_type, internal_code,
        kind, country, int(need(_SMALL_NUMBER, scope, "the sectoral scope")),
        int(need(_DIGITS, project, "the project id")), vintage_start, vintage_end,
        int(need(_SMALL_NUMBER, flag, "the flag")))


def _ddmmyyyy(value: str, shown: str) -> date:
    try:
        return date(int(value[4:]), int(value[2:4]), int(value[:2]))
    except ValueError:
        raise InvalidSerialError(
            f"Verra serial {shown!r}: {value} is not a date (DDMMYYYY)") from None


# --- Additional Certifications -> Kapok's labels ----------------------------------------------

MAX_LABEL_TEXT = 80
# Verra's CORSIA values hold a comma themselves ("CORSIA - First Phase, 2024-2026 Scope"), so
# they are matched whole before the cell is split at commas and semicolons.
_CORSIA_PHASE = re.compile(
    r"CORSIA\s*[-\u2013\u2014]\s*[A-Za-z]+\s+Phase,\s*(?P<years>[0-9]{4}\s*-\s*[0-9]{4})\s+Scope",
    re.ASCII | re.IGNORECASE)
_CCB_GOLD = re.compile(r"CCB\s*-\s*(?P<what>[A-Za-z]+)\s+Gold", re.IGNORECASE)
_ARTICLE_6 = re.compile(r"Article\s+6\s+Authori[sz]ed(?:\s*[-\u2013\u2014:].*)?", re.IGNORECASE)
_SEPARATORS = re.compile(r"[;,]")
# Verra's value (spaces collapsed, case folded) -> Kapok's label.
VERRA_LABELS = {
    "icvcm ccp": "CCP",
    "ccp": "CCP",
    "ccp-approved": "CCP",
    "corsia": "CORSIA",
    "ccb": "CCB",
    "ccb-no distinction": "CCB",
    "ccb - no distinction": "CCB",
    "social carbon": "Social Carbon",
    "socialcarbon": "Social Carbon",
}


def kapok_labels(additional_certifications: str) -> tuple[str, ...]:
    """Kapok's labels for the values of Verra's ``Additional Certifications`` cell (several
    separated by ';' or ','), in order, duplicates dropped. Known values map to Kapok's short
    labels (``ICVCM CCP`` -> ``CCP``, ``CORSIA - First Phase, 2024-2026 Scope`` -> ``CORSIA
    2024-2026``); an unknown value is kept as it reads. Raises InvalidCommandError for a value
    that is not printable or longer than MAX_LABEL_TEXT."""
    labels: list[str] = []
    cell = additional_certifications or ""
    position = 0
    while position < len(cell):
        if cell[position] in ";, \t":
            position += 1
            continue
        corsia = _CORSIA_PHASE.match(cell, position)
        if corsia:
            labels.append("CORSIA " + re.sub(r"\s", "", corsia["years"]))
            position = corsia.end()
            continue
        separator = _SEPARATORS.search(cell, position)
        end = separator.start() if separator else len(cell)
        labels.append(_label(cell[position:end].strip()))
        position = end
    return tuple(dict.fromkeys(labels))


def _label(value: str) -> str:
    check_printable("the additional certification", value)
    if len(value) > MAX_LABEL_TEXT:
        raise InvalidCommandError(
            f"the additional certification {value[:40]!r}... is longer than {MAX_LABEL_TEXT} "
            "characters")
    known = VERRA_LABELS.get(" ".join(value.split()).casefold())
    if known:
        return known
    gold = _CCB_GOLD.fullmatch(value)
    if gold:
        return f"CCB {gold['what'].capitalize()} Gold"
    if _ARTICLE_6.fullmatch(value):
        return "Article 6 Authorized"
    return " ".join(value.split())


# --- Sustainable Development Goals -----------------------------------------------------------

SDG_NAMES = (
    "No Poverty", "Zero Hunger", "Good Health and Well-being", "Quality Education",
    "Gender Equality", "Clean Water and Sanitation", "Affordable and Clean Energy",
    "Decent Work and Economic Growth", "Industry, Innovation and Infrastructure",
    "Reduced Inequalities", "Sustainable Cities and Communities",
    "Responsible Consumption and Production", "Climate Action", "Life Below Water",
    "Life on Land", "Peace, Justice and Strong Institutions", "Partnerships for the Goals",
)
_SDG_BY_NAME = {name.casefold(): number for number, name in enumerate(SDG_NAMES, start=1)}
# "13: Climate Action", "SDG 13", "13", "Goal 13 - Climate Action": the number leads.
_SDG_ITEM = re.compile(r"(?:SDG|Goal)?\s*#?\s*([0-9]{1,2})(?:[\s:.\-\u2013]+(.*))?",
                       re.ASCII | re.IGNORECASE | re.DOTALL)
MAX_SDG_TEXT = 2000


def verra_sdgs(text: str) -> tuple[int, ...]:
    """The goal numbers (1-17, sorted, once each) in Verra's ``Sustainable Development Goals``
    cell: "13: Climate Action; 15: Life on Land", plain numbers, or goal names; raises
    InvalidCommandError for text that names no goal."""
    if len(text or "") > MAX_SDG_TEXT:
        raise InvalidCommandError(f"the SDGs are longer than {MAX_SDG_TEXT} characters")
    numbers: set[int] = set()
    # Commas occur inside goal names ("Peace, Justice and ..."), so a comma separates goals
    # only before a number; semicolons always do.
    for item in re.split(r";|,(?=\s*(?:SDG|Goal)?\s*#?\s*[0-9])", text or "", flags=re.I):
        item = item.strip()
        if not item:
            continue
        match = _SDG_ITEM.fullmatch(item)
        number = int(match[1]) if match else _SDG_BY_NAME.get(" ".join(item.split()).casefold())
        if number is None or not 1 <= number <= 17:
            raise InvalidCommandError(
                f"the SDGs: {item[:40]!r} is not a goal (1-17, e.g. '13: Climate Action')")
        numbers.add(number)
    return tuple(sorted(numbers))
