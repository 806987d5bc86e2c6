"""Small index aggregates: which listings exist, which farms belong to which project."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import named_id
from market.domain.errors import InvalidFarmError


class Catalogue(Aggregate):
    """Every listing's id, in the order listed (listings are created rarely)."""

    @staticmethod
    def create_id() -> UUID:
        return named_id("catalogue", "listings")

    @event("Started")
    def __init__(self) -> None:
        self.listing_ids: list[str] = []

    def add(self, listing_id: str) -> None:
        if listing_id not in self.listing_ids:
            self._added(listing_id)

    @event("ListingAdded")
    def _added(self, listing_id: str) -> None:
        self.listing_ids = [*self.listing_ids, listing_id]


class FarmRoster(Aggregate):
    """The farms of every project. Farm codes are unique across projects, because the
    proceeds journal keeps one payable account per farm code."""
    # Containers of immutable values only: a copy for a command copies them shallowly
    # (ledger.application.copy_aggregate).
    flat_containers = frozenset({"farms"})

    @staticmethod
    def create_id() -> UUID:
        return named_id("roster", "farms")

    @event("Started")
    def __init__(self) -> None:
        self.farms: dict[str, str] = {}  # farm code -> project registry id

    def add(self, project: str, farm_code: str) -> None:
        if farm_code in self.farms:
            raise InvalidFarmError(
                f"farm code {farm_code} is already used by project {self.farms[farm_code]}")
        self._added(project, farm_code)

    @event("FarmAdded")
    def _added(self, project: str, farm_code: str) -> None:
        self.farms = {**self.farms, farm_code: project}

    def codes_of(self, project: str) -> list[str]:
        return sorted(code for code, owner in self.farms.items() if owner == project)
