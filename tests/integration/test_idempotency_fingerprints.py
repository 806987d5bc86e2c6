"""A client's retry under an idempotency key stays a retry across a deploy: the command's
fingerprint is taken from named fields, and a field added with a default does not change it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, make_dataclass
from datetime import date

import pytest

from ledger.application import Ledger
from ledger.domain.commands import CommandRecord, fingerprint
from ledger.domain.errors import IdempotencyConflictError
from ledger.domain.retirements import RetirementClaim
from testbed.builders import INVENTORY, ledger_with_project


@dataclass(frozen=True)
class ClaimBefore:
    beneficiary: str
    reason: str
    period_start: date | None = None


# The same claim after a deploy that added an optional field.
ClaimAfter = make_dataclass("ClaimAfter", [
    ("beneficiary", str), ("reason", str), ("period_start", date | None, None),
    ("beneficiary_country", str, "")], frozen=True)


def test_an_optional_field_added_at_its_default_keeps_the_fingerprint():
    before = fingerprint("retire", {"account": "acme", "claim": ClaimBefore("Acme", "Offset"),
                                    "quantity": 5, "serials": None})
    after = fingerprint("retire", {"account": "acme", "claim": ClaimAfter("Acme", "Offset"),
                                   "quantity": 5, "serials": None, "note": None})

    assert before == after
    assert fingerprint("retire", {"claim": ClaimAfter("Acme", "Offset", None, "PE")}) != (
        fingerprint("retire", {"claim": ClaimBefore("Acme", "Offset")}))


def test_a_value_set_differently_is_a_different_command():
    claim = ClaimBefore("Acme", "Offset", date(2025, 1, 1))

    assert fingerprint("retire", {"claim": claim}) != fingerprint(
        "retire", {"claim": ClaimBefore("Acme", "Offset", date(2025, 1, 2))})


def test_a_retry_after_a_deploy_returns_the_first_result(database_url):
    ledger = ledger_with_project(Ledger(database=database_url))
    ledger.issue("VCS-1067", 2021, 100)
    ledger.transfer(INVENTORY, "acme", quantity=10)
    claim = RetirementClaim("Acme Peru S.A.C.", "Corporate Emissions Inventory Accounting")
    first = ledger.retire("acme", claim, quantity=4, idempotency_key="retire-1")
    # The record as a release that knew fewer optional fields stored it: their digests agree.
    stored = ledger.store.repository.get(CommandRecord.create_id("retire-1"))
    assert stored.fingerprint == fingerprint("retire", {
        "account": "acme", "claim": claim, "quantity": 4, "serials": None})

    again = ledger.retire("acme", claim, quantity=4, idempotency_key="retire-1")

    assert again == first
    assert ledger.get_account("acme").balance == 6
    with pytest.raises(IdempotencyConflictError):
        ledger.retire("acme", claim, quantity=5, idempotency_key="retire-1")


def test_a_record_stored_before_named_fields_answers_a_retry_of_its_command(database_url):
    """A record saved with the older digest (a hash of the payload's repr) is matched by its
    command: a client's retry across the upgrade returns the first result."""
    ledger = Ledger(database=database_url)
    legacy = hashlib.sha256(json.dumps({"command": "open_account", "name": "acme"},
                                       sort_keys=True).encode()).hexdigest()
    ledger.store.save(CommandRecord("open-1", "open_account", legacy, {"account": "acme"}))

    assert ledger.open_account("acme", idempotency_key="open-1") == {"account": "acme"}
    with pytest.raises(IdempotencyConflictError):
        ledger.transfer(INVENTORY, "acme", quantity=1, idempotency_key="open-1")
