"""How the ledger's value objects are stored in events: compact, and stable across versions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal

from eventsourcing.persistence import Transcoding

from ledger.domain.projects import ProjectDetails, Vintage
from ledger.domain.retirements import RetirementClaim
from ledger.domain.serials import SerialBlock


class SerialBlockAsList(Transcoding):
    # A list, not a dict: accounts and events hold many blocks.
    type = SerialBlock
    name = "block"

    def encode(self, obj: SerialBlock) -> list:
        return obj.to_list()

    def decode(self, data: list) -> SerialBlock:
        return SerialBlock.from_list(data)


class DateAsISO(Transcoding):
    type = date
    name = "date"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ProjectDetailsAsDict(Transcoding):
    type = ProjectDetails
    name = "project_details"

    def encode(self, obj: ProjectDetails) -> dict:
        data = asdict(obj)
        data["sdgs"] = list(obj.sdgs)
        data["labels"] = list(obj.labels)
        return data

    def decode(self, data: dict) -> ProjectDetails:
        return ProjectDetails(
            **{
                **data,
                "sdgs": tuple(data["sdgs"]),
                "labels": tuple(data["labels"]),
                "area_ha": Decimal(data["area_ha"]),
                "buffer_percent": Decimal(data["buffer_percent"]),
            }
        )


class VintageAsDict(Transcoding):
    type = Vintage
    name = "vintage"

    def encode(self, obj: Vintage) -> dict:
        return {"year": obj.year, "labels": list(obj.labels), "ca": obj.corresponding_adjustment}

    def decode(self, data: dict) -> Vintage:
        return Vintage(data["year"], tuple(data["labels"]), data["ca"])


class RetirementClaimAsDict(Transcoding):
    type = RetirementClaim
    name = "claim"

    def encode(self, obj: RetirementClaim) -> dict:
        return dict(obj.__dict__)

    def decode(self, data: dict) -> RetirementClaim:
        return RetirementClaim(**data)


LEDGER_TRANSCODINGS = (
    SerialBlockAsList(),
    DateAsISO(),
    ProjectDetailsAsDict(),
    VintageAsDict(),
    RetirementClaimAsDict(),
)
