"""The public endpoints witnesses use: consistency proofs between tree sizes, and cosignatures
returned to Kapok and served on the cosigned checkpoint."""

from __future__ import annotations

import base64
import time

import pytest

from ledger.audit.cosignature import WitnessSigningKey
from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog
from ledger.audit.verifier import verify_consistency

WHEN = 1765000000


@pytest.fixture
def log(market) -> AuditLog:
    """The demo store logged and signed in two checkpoints, as the worker would have."""
    path = signing_key_file()
    generate_key(path)
    log = AuditLog(market)
    log.follow(SigningKey.load(path))
    market.ledger.issue("KAP-AF-01", 2021, 100)
    log.follow(SigningKey.load(path))
    return log


@pytest.fixture
def witness(app) -> WitnessSigningKey:
    """A witness Kapok is configured to trust."""
    key = WitnessSigningKey.generate("auditor.example/witness")
    app.config["WITNESS_KEYS"] = (key.verifier,)
    return key


def sizes(log: AuditLog) -> list[int]:
    return [head.tree_size for head in log.heads()]


def cosigned(note: bytes, key: WitnessSigningKey, when: int = WHEN) -> bytes:
    return note + key.cosign(note.partition(b"\n\n")[0] + b"\n", when).line.encode()


def test_a_consistency_proof_between_two_checkpoints_is_public(anonymous, log):
    old, new = sizes(log)
    roots = {head.tree_size: head.root_hash for head in log.heads()}

    response = anonymous.get(f"/audit/consistency?old={old}&new={new}")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["old_size"], body["new_size"]) == (old, new)
    proof = [base64.b64decode(node) for node in body["proof"]]
    assert verify_consistency(old, new, roots[old], roots[new], proof)


@pytest.mark.parametrize("query, status, message", [
    ("", 400, "old and new must be tree sizes"),
    ("old=1", 400, "old and new must be tree sizes"),
    ("old=-1&new=3", 400, "old and new must be tree sizes"),
    ("old=x&new=3", 400, "old and new must be tree sizes"),
    ("old=1&new=99999999999999999999999", 400, "old and new must be tree sizes"),
    ("old=\u0663&new=4", 400, "old and new must be tree sizes"),  # an Arabic-Indic three
    ("old=5&new=3", 400, "the sizes must satisfy 0 <= old <= new <="),
    ("old=1&new=100000", 400, "the latest checkpoint's size"),
])
def test_a_consistency_proof_between_sizes_it_cannot_have_is_refused(anonymous, log, query,
                                                                     status, message):
    response = anonymous.get(f"/audit/consistency?{query}")

    assert response.status_code == status
    assert message in response.get_json()["message"]


def test_no_consistency_proof_before_the_first_checkpoint(anonymous, market):
    response = anonymous.get("/audit/consistency?old=0&new=0")

    assert response.status_code == 404 and "no checkpoint" in response.get_json()["message"]


def test_a_trusted_witness_cosignature_is_kept_and_served_on_the_checkpoint(anonymous, log,
                                                                             witness):
    note = log.latest_checkpoint()

    response = anonymous.post("/audit/cosignatures", data=cosigned(note, witness))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"tree_size": sizes(log)[-1],
                                   "witnesses": ["auditor.example/witness"]}
    served = anonymous.get("/audit/checkpoint.cosigned")
    assert served.status_code == 200 and served.get_data() == cosigned(note, witness)
    assert anonymous.get("/audit/checkpoint").get_data() == note  # the plain one stays as it was


def test_a_witness_sending_again_replaces_its_older_cosignature(anonymous, log, witness):
    note = log.latest_checkpoint()
    anonymous.post("/audit/cosignatures", data=cosigned(note, witness, WHEN + 60))

    anonymous.post("/audit/cosignatures", data=cosigned(note, witness, WHEN))  # older: ignored

    assert anonymous.get("/audit/checkpoint.cosigned").get_data() == cosigned(
        note, witness, WHEN + 60)


def test_the_cosigned_checkpoint_is_the_largest_cosigned_one(anonymous, log, witness):
    older = log.checkpoint(sizes(log)[0])
    anonymous.post("/audit/cosignatures", data=cosigned(older, witness))

    assert anonymous.get("/audit/checkpoint.cosigned").get_data() == cosigned(older, witness)


def test_a_witness_kapok_does_not_trust_is_refused(anonymous, log, witness):
    stranger = WitnessSigningKey.generate("stranger.example/witness")

    response = anonymous.post("/audit/cosignatures",
                              data=cosigned(log.latest_checkpoint(), stranger))

    assert response.status_code == 403
    assert "no cosignature of a witness Kapok trusts" in response.get_json()["message"]
    assert anonymous.get("/audit/checkpoint.cosigned").status_code == 404


def test_a_cosignature_of_a_checkpoint_kapok_did_not_sign_is_refused(anonymous, log, witness):
    note = log.latest_checkpoint()
    text, _, signature = note.partition(b"\n\n")
    lines = text.split(b"\n")
    forged_root = base64.b64encode(bytes(32))
    forged = b"\n".join([lines[0], lines[1], forged_root]) + b"\n\n" + signature

    response = anonymous.post("/audit/cosignatures", data=cosigned(forged, witness))

    assert response.status_code == 409
    assert f"not the checkpoint Kapok signed for tree size {sizes(log)[-1]}" in (
        response.get_json()["message"])


def test_a_cosignature_that_does_not_verify_is_refused(anonymous, log, witness):
    note = log.latest_checkpoint()
    # Cosigned over another text: the line is the trusted witness's, its signature is not.
    line = witness.cosign(b"another\n1\n" + base64.b64encode(bytes(32)) + b"\n", WHEN).line

    response = anonymous.post("/audit/cosignatures", data=note + line.encode())

    assert response.status_code == 400 and "does not verify" in response.get_json()["message"]


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "not a signed note"),
    (b"\xff\xfe", 400, "UTF-8"),
    (b"kapok.example/tambopata\n999999\nAAAA\n\n\xe2\x80\x94 w AAAAAAA=\n", 404,
     "no checkpoint of size 999999"),
    (b"kapok.example/tambopata\nmany\nAAAA\n\n\xe2\x80\x94 w AAAAAAA=\n", 400, "not a checkpoint"),
    (b"x" * 70_000, 413, "at most"),
])
def test_a_malformed_cosigned_note_is_refused(anonymous, log, witness, body, status, message):
    response = anonymous.post("/audit/cosignatures", data=body)

    assert response.status_code == status
    assert message in response.get_json()["message"]


def test_a_cosignature_dated_in_the_future_is_refused(anonymous, log, witness):
    # Kept, it would outrank every later cosignature of the witness for that size for ever.
    note = log.latest_checkpoint()
    tomorrow = int(time.time()) + 24 * 3600

    response = anonymous.post("/audit/cosignatures", data=cosigned(note, witness, tomorrow))

    assert response.status_code == 400 and "future" in response.get_json()["message"]
    assert anonymous.get("/audit/checkpoint.cosigned").status_code == 404
