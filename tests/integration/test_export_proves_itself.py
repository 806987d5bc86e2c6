"""The JSON Lines export proves itself to a checker written from docs/AUDIT.md alone
(testbed/export_check.py): every line's bytes, fields and leaf, the checkpoints at its end and
the consistency proofs between them; an edited field or edited bytes fail it. On SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ledger.audit.keys import SigningKey
from ledger.audit.log import AuditLog
from market.application import Marketplace
from testbed.export_check import export_problems
from tests.integration.command_line import in_process


@pytest.fixture
def kapok(database_url, tmp_path, monkeypatch, capsys):
    return in_process(monkeypatch, capsys, database_url,
                      KAPOK_SIGNING_KEY_FILE=str(tmp_path / "keys" / "signing.pem"))


@pytest.fixture
def exported(kapok, database_url, tmp_path) -> list[str]:
    """The demo and three retirements more, signed a few events a page, exported."""
    assert kapok("demo")[0] == 0
    for number in range(3):
        assert kapok("ledger", "retire", "--account", "org-andes-coffee-roasters", "--quantity",
                     "1", "--beneficiary", f"Export {number}", "--reason", "Other")[0] == 0
    market = Marketplace(database=database_url)
    AuditLog(market).follow(SigningKey.load(tmp_path / "keys" / "signing.pem"), page_size=4)
    market.close()
    target = tmp_path / "events.jsonl"
    code, _, err = kapok("audit", "export", "--output", str(target))
    assert code == 0, err
    return target.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def verifier_key(kapok) -> str:
    code, out, _ = kapok("audit", "verifier-key")
    assert code == 0
    return out


def retirement_line(lines: list[str]) -> tuple[int, dict]:
    return next((number, json.loads(line)) for number, line in enumerate(lines)
                if '"Retirement.Recorded"' in line and "Export 2" in line)


def test_an_export_checks_end_to_end_from_the_docs_alone(exported, verifier_key):
    kinds = [next(iter({"checkpoint", "consistency_proof", "position"} & set(json.loads(line))))
             for line in exported]

    assert export_problems(exported, verifier_key) == []
    # events, then the checkpoints over them, then a proof between each two
    assert kinds == sorted(kinds, key=["position", "checkpoint", "consistency_proof"].index)
    assert kinds.count("checkpoint") >= 3
    assert kinds.count("consistency_proof") == kinds.count("checkpoint") - 1


def test_a_beneficiary_edited_in_the_decoded_fields_fails(exported, verifier_key):
    number, row = retirement_line(exported)
    row["fields"]["claim"]["beneficiary"] = "Someone Else"
    exported[number] = json.dumps(row)

    assert export_problems(exported, verifier_key) == [
        f"line {number + 1}: the event, timestamp or fields shown are not those of the stored "
        "state"]


def test_a_beneficiary_edited_in_the_stored_bytes_fails_even_with_its_hash_made_again(
        exported, verifier_key):
    # The editor changes the state, its leaf input, the leaf hash and the fields alike:
    # only the signed roots are left to catch it.
    number, row = retirement_line(exported)
    leaf = json.loads(base64.b64decode(row["leaf_input"]))
    state = base64.b64decode(leaf["state"]).replace(b"Export 2", b"Export 9")
    leaf["state"] = base64.b64encode(state).decode()
    data = json.dumps(leaf, sort_keys=True, separators=(",", ":")).encode()
    row.update(leaf_input=base64.b64encode(data).decode(),
               leaf_hash=hashlib.sha256(b"\0" + data).hexdigest())
    row["fields"]["claim"]["beneficiary"] = "Export 9"
    exported[number] = json.dumps(row)

    problems = export_problems(exported, verifier_key)

    assert problems and all("do not give the root of the checkpoint" in p for p in problems)


def test_edited_bytes_whose_hash_was_left_fail(exported, verifier_key):
    number, row = retirement_line(exported)
    row["leaf_input"] = base64.b64encode(
        base64.b64decode(row["leaf_input"]).replace(b'"originator_version":1',
                                                    b'"originator_version":2')).decode()
    exported[number] = json.dumps(row)

    problems = export_problems(exported, verifier_key)

    assert f"line {number + 1}: leaf_hash is not the hash of leaf_input" in problems


def test_a_consistency_proof_edited_fails(exported, verifier_key):
    number = next(n for n, line in enumerate(exported) if "consistency_proof" in line)
    row = json.loads(exported[number])
    row["consistency_proof"]["proof"][0] = base64.b64encode(bytes(32)).decode()
    exported[number] = json.dumps(row)

    assert export_problems(exported, verifier_key) == [
        f"line {number + 1}: no consistency from checkpoint "
        f"{row['consistency_proof']['old_size']} to {row['consistency_proof']['new_size']}"]
