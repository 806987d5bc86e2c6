"""The 50-line verifier, run as a buyer would run it (a separate Python process, the script
as the registry serves it): it prints what the signed state proves, and refuses edited
fields, bytes, indexes and checkpoints, and a wrong key. On SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import base64
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.audit import verify_retirement
from ledger.audit.checkpoint import verifier_key
from ledger.audit.keys import generate_key, load_public_key
from ledger.audit.verifier import verify_proof_file
from market.application import Marketplace
from tests.integration.command_line import in_process

RETIREMENT = "Andes Coffee Roasters S.A.C."


@pytest.fixture
def proven(database_url, tmp_path, monkeypatch, capsys):
    """(the proof document of the demo's first retirement, the verifier key, the script)."""
    kapok = in_process(monkeypatch, capsys, database_url,
                       KAPOK_SIGNING_KEY_FILE=str(tmp_path / "keys" / "signing.pem"))
    assert kapok("demo")[0] == 0
    market = Marketplace(database=database_url)
    retirement_id = market.caught_up_view().retirements()[0]["retirement_id"]
    market.close()
    code, out, err = kapok("audit", "prove", retirement_id)
    assert code == 0, err
    key = kapok("audit", "verifier-key")[1].strip()
    script = tmp_path / "buyer" / "verify_retirement.py"
    script.parent.mkdir()
    script.write_text(Path(verify_retirement.__file__).read_text(encoding="utf-8"))
    return json.loads(out), key, script


def run(script, document: dict, key: str) -> subprocess.CompletedProcess:
    proof = script.parent / "proof.json"
    proof.write_text(json.dumps(document))
    # -I: no Kapok on the path beyond what the interpreter has; the script needs none.
    return subprocess.run([sys.executable, "-I", str(script), str(proof), key],
                          capture_output=True, text=True, timeout=60, cwd=script.parent)


def test_a_valid_proof_prints_what_the_signed_state_says(proven):
    document, key, script = proven
    decoded = document["event"]["decoded"]

    result = run(script, document, key)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: retirement {decoded['retirement_id']} for {RETIREMENT}: ")
    tonnes = sum(int(s.split("-")[3]) - int(s.split("-")[2]) + 1 for s in decoded["blocks"])
    assert f"{tonnes} tonnes, serials {', '.join(decoded['blocks'])}" in result.stdout
    assert f"leaf {document['event']['leaf_index']} of {document['tree_head']['tree_size']}" \
        in result.stdout


def test_the_key_may_be_given_as_a_file(proven):
    document, key, script = proven
    (script.parent / "key.txt").write_text(key + "\n")
    assert run(script, document, str(script.parent / "key.txt")).returncode == 0


def edited_state(document: dict) -> None:
    event = document["event"]
    state = base64.b64decode(event["state"]).replace(RETIREMENT.encode(), b"Someone Else")
    event["state"] = base64.b64encode(state).decode()
    event["decoded"]["claim"]["beneficiary"] = "Someone Else"


def shown_beneficiary(document: dict) -> None:
    document["event"]["decoded"]["claim"]["beneficiary"] = "Someone Else"


def shown_serial(document: dict) -> None:
    document["event"]["decoded"]["blocks"][0] = "KAP-1-1-999999-VCS1067-2019-PE"


def leaf_index(document: dict) -> None:
    document["event"]["leaf_index"] += 1


def checkpoint_size(document: dict) -> None:
    origin, size, rest = document["tree_head"]["checkpoint"].split("\n", 2)
    document["tree_head"]["checkpoint"] = f"{origin}\n{int(size) + 1}\n{rest}"


def proof_node(document: dict) -> None:
    document["inclusion_proof"][0] = "00" * 32


def topic(document: dict) -> None:
    document["event"]["topic"] = document["event"]["topic"].replace("Recorded", "Recordeb")


@pytest.mark.parametrize("edit, reason", [
    (edited_state, "the event is not at that leaf"),
    (shown_beneficiary, "the decoded fields are not the signed state's"),
    (shown_serial, "the decoded fields are not the signed state's"),
    (leaf_index, "the event is not at that leaf"),
    (checkpoint_size, "InvalidSignature"),
    (proof_node, "the event is not at that leaf"),
    (topic, "the event is not at that leaf"),
])
def test_an_edited_proof_is_refused(proven, edit, reason):
    document, key, script = proven
    edited = copy.deepcopy(document)
    edit(edited)

    result = run(script, edited, key)

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("REFUSED: ") and reason in result.stderr


def test_the_position_is_not_signed_so_it_is_neither_used_nor_shown(proven):
    document, key, script = proven
    edited = copy.deepcopy(document)
    edited["event"]["position"] = 999_999

    result = run(script, edited, key)

    assert result.returncode == 0 and "999999" not in result.stdout.replace(",", "")
    assert result.stdout == run(script, document, key).stdout


def test_kapoks_full_verifier_refuses_shown_fields_that_are_not_the_state(proven, tmp_path):
    document, _, _ = proven
    public_pem = load_public_key(tmp_path / "keys" / "signing.pem")
    edited = copy.deepcopy(document)
    shown_beneficiary(edited)

    assert verify_proof_file(document, public_pem) == []
    assert verify_proof_file(edited, public_pem) == [
        "event.decoded is not what the stored state says"]


def test_another_key_is_refused(proven, tmp_path):
    document, key, script = proven
    other = generate_key(tmp_path / "other" / "key.pem")
    name = key.split("+", 1)[0]

    for wrong in (verifier_key(name, load_public_key(other)),
                  verifier_key("another.example/log", load_public_key(other)),
                  key[:-6] + "AAAAA="):
        result = run(script, document, wrong)
        assert result.returncode == 1 and result.stderr.startswith("REFUSED: "), wrong


def test_the_verifier_is_short_and_needs_only_python_and_cryptography():
    source = Path(verify_retirement.__file__).read_text(encoding="utf-8")
    code = [line for line in source.splitlines() if line.strip()]
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}

    assert len(code) <= 60
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
