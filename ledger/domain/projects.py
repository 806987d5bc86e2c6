"""Projects and their vintages: what credits are issued for."""

from __future__ import annotations

import re

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import InvalidCommandError, UnknownVintageError
from ledger.domain.ids import named_id
from ledger.domain.text import check_printable

PROJECT_TYPES = ("REDD+", "Agroforestry", "ARR", "IFM", "Other")
FIRST_VINTAGE = 1990
# The registry of record: Kapok itself ("native": it issues and numbers the credits), or
# Verra ("mirrored": Kapok holds, sells and retires Verra's own serial blocks).
NATIVE, VERRA = "kapok", "verra"
REGISTRIES = (NATIVE, VERRA)
VERRA_PROJECT_PAGE = "https://registry.verra.org/app/projectDetail/VCS/{number}"


@dataclass(frozen=True)
class ProjectDetails:
    """What buyers and auditors read about a project. ``registry_id`` e.g. ``VCS-1067``."""

    registry_id: str
    name: str
    proponent: str
    country: str  # ISO 3166-1 alpha-2
    region: str
    project_type: str
    methodology: str
    area_ha: Decimal
    sdgs: tuple[int, ...] = ()
    description: str = ""
    labels: tuple[str, ...] = ()
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    buffer_percent: Decimal = Decimal("15")
    inventory_account: str = "ecosphere-inventory"
    registry: str = NATIVE

    @property
    def mirrored(self) -> bool:
        return self.registry != NATIVE

    @property
    def registry_url(self) -> str | None:
        """The project's public page at its registry of record, if that is not Kapok."""
        if self.registry == VERRA:
            return VERRA_PROJECT_PAGE.format(number=self.registry_id.split("-", 1)[1])
        return None

    def check(self) -> None:
        """Raises InvalidCommandError naming the first field that is not acceptable."""
        # ASCII only: ids and countries are printed in serial numbers and parsed back.
        if not _ASCII_ID.fullmatch(self.registry_id or ""):
            raise InvalidCommandError(
                f"invalid registry id {self.registry_id!r}: ASCII letters, digits and '-' only"
            )
        if self.registry not in REGISTRIES:
            raise InvalidCommandError(
                f"invalid registry {self.registry!r}: one of {', '.join(REGISTRIES)}")
        if self.registry == VERRA and not _VERRA_ID.fullmatch(self.registry_id):
            raise InvalidCommandError(
                f"a project mirrored from Verra has a registry id VCS-<number>, "
                f"not {self.registry_id!r}")
        if not self.name.strip():
            raise InvalidCommandError("a project needs a name")
        for field in ("name", "proponent", "region", "methodology", "description"):
            check_printable(field, getattr(self, field), multiline=field == "description")
        if not _COUNTRY.fullmatch(self.country or ""):
            raise InvalidCommandError(f"invalid country {self.country!r}: use ISO-2, e.g. PE")
        if self.project_type not in PROJECT_TYPES:
            raise InvalidCommandError(
                f"invalid project type {self.project_type!r}: one of {', '.join(PROJECT_TYPES)}"
            )
        # A registry's export does not state a mirrored project's area: 0 is "not known".
        if not self.area_ha.is_finite() or self.area_ha < 0 or (
                self.area_ha == 0 and not self.mirrored):
            raise InvalidCommandError("area must be a positive number of hectares")
        if not self.buffer_percent.is_finite() or not 0 <= self.buffer_percent < 100:
            raise InvalidCommandError("buffer percent must be from 0 to below 100")
        if any(not 1 <= sdg <= 17 for sdg in self.sdgs):
            raise InvalidCommandError("SDGs are numbered 1 to 17")


_ASCII_ID = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", re.ASCII)
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)
_VERRA_ID = re.compile(r"VCS-[1-9][0-9]{0,8}", re.ASCII)


@dataclass(frozen=True)
class Vintage:
    """A vintage year with the labels its units carry (CCB, CCP ...)."""

    year: int
    labels: tuple[str, ...] = ()
    corresponding_adjustment: str = "Not Required"


class Project(Aggregate):
    """A carbon project registered on Kapok, with the vintages it may be issued for."""

    @staticmethod
    def create_id(details: ProjectDetails) -> UUID:
        return project_id(details.registry_id)

    @event("Registered")
    def __init__(self, details: ProjectDetails):
        self.details = details
        self.vintages: dict[int, Vintage] = {}

    @property
    def registry_id(self) -> str:
        return self.details.registry_id

    def add_vintage(self, vintage: Vintage, *, today: date) -> None:
        if not FIRST_VINTAGE <= vintage.year <= today.year:
            raise InvalidCommandError(
                f"invalid vintage {vintage.year}: from {FIRST_VINTAGE} to {today.year}"
            )
        if vintage.year not in self.vintages:
            self._add_vintage(vintage)

    @event("VintageAdded")
    def _add_vintage(self, vintage: Vintage) -> None:
        self.vintages = {**self.vintages, vintage.year: vintage}

    def vintage(self, year: int) -> Vintage:
        try:
            return self.vintages[year]
        except KeyError:
            raise UnknownVintageError(
                f"project {self.registry_id} has no vintage {year}; "
                f"known: {', '.join(map(str, sorted(self.vintages))) or 'none'}"
            ) from None


def project_id(registry_id: str) -> UUID:
    return named_id("project", registry_id.upper())
