"""How the market's value objects are stored in events and snapshots: compact, and stable."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

from eventsourcing.persistence import Transcoding

from ledger.adapters.transcodings import DateAsISO
from market.domain.listings import PriceTier
from market.domain.proceeds import FarmDetails, JournalEntry, Posting, RuleVersion


class RuleVersionAsDict(Transcoding):
    type = RuleVersion
    name = "benefit_rule_version"

    def encode(self, obj: RuleVersion) -> dict:
        return {"version": obj.version, "shares": dict(obj.shares), "from": obj.effective_from}

    def decode(self, data: dict) -> RuleVersion:
        return RuleVersion(data["version"], dict(data["shares"]), data["from"])


class FarmDetailsAsDict(Transcoding):
    type = FarmDetails
    name = "farm_details"

    def encode(self, obj: FarmDetails) -> dict:
        return asdict(obj)

    def decode(self, data: dict) -> FarmDetails:
        return FarmDetails(**data)


class JournalEntryAsDict(Transcoding):
    # Postings as [account, amount] pairs: a sale to many farms has many of them.
    type = JournalEntry
    name = "proceeds_entry"

    def encode(self, obj: JournalEntry) -> dict:
        data = {"kind": obj.kind, "ref": obj.reference, "on": obj.on,
                "postings": [[posting.account, posting.amount] for posting in obj.postings]}
        if obj.project is not None:
            data["project"] = obj.project
        return data

    def decode(self, data: dict) -> JournalEntry:
        postings = tuple(Posting(account, amount) for account, amount in data["postings"])
        return JournalEntry(data["kind"], data["ref"], data["on"], postings, data.get("project"))


class PriceTierAsList(Transcoding):
    type = PriceTier
    name = "price_tier"

    def encode(self, obj: PriceTier) -> list:
        return [obj.min_tonnes, str(obj.price_per_tonne)]

    def decode(self, data: list) -> PriceTier:
        return PriceTier(data[0], Decimal(data[1]))


# DateAsISO again, so an application that registers only these can store journal dates.
MARKET_TRANSCODINGS = (
    DateAsISO(),
    RuleVersionAsDict(),
    FarmDetailsAsDict(),
    JournalEntryAsDict(),
)
LISTING_TRANSCODINGS = (PriceTierAsList(),)
