"""Witnesses' cosignatures are C2SP tlog-cosignature lines (Ed25519, ``cosignature/v1``): read
here as c2sp.org/tlog-cosignature describes them, with a reader written in this file."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.audit.checkpoint import sign_checkpoint
from ledger.audit.cosignature import (
    CosignatureError,
    WitnessKey,
    WitnessSigningKey,
    cosigned_message,
    cosignatures,
)
from ledger.audit.keys import SigningKey

ORIGIN = "registry.example.org/audit"
WITNESS = "auditor.example/witness"
ROOT = hashlib.sha256(b"a root").digest()
WHEN = 1679315147


@pytest.fixture
def witness() -> WitnessSigningKey:
    return WitnessSigningKey.generate(WITNESS)


@pytest.fixture
def note() -> bytes:
    return sign_checkpoint(SigningKey(Ed25519PrivateKey.generate()), ORIGIN, 153, ROOT)


def public_of(vkey: str) -> bytes:
    """The spec's vkey: <name>+<hex key ID>+base64(0x04 || 32-byte key)."""
    name, key_hash, encoded = vkey.split("+", 2)
    key = base64.b64decode(encoded)
    assert key[0] == 0x04 and len(key) == 33
    assert bytes.fromhex(key_hash) == spec_key_id(name, key[1:])
    return key[1:]


def spec_key_id(name: str, public: bytes) -> bytes:
    # tlog-cosignature: SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 public key)[:4]
    return hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]


def check_as_the_spec_says(note: bytes, line: str, vkey: str) -> int:
    """The timestamp of a cosignature line on ``note``; raises if it does not verify."""
    text = note.decode().partition("\n\n")[0] + "\n"
    prefix, name, encoded = line.rstrip("\n").split(" ")
    assert prefix == "\u2014" and name == vkey.split("+")[0]
    blob = base64.b64decode(encoded, validate=True)
    public = public_of(vkey)
    assert blob[:4] == spec_key_id(name, public) and len(blob) == 4 + 8 + 64
    timestamp = int.from_bytes(blob[4:12], "big")
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)  # raises if bad
    return timestamp


def test_a_cosignature_reads_as_the_spec_describes_it(witness, note):
    text = note.partition(b"\n\n")[0] + b"\n"

    cosignature = witness.cosign(text, WHEN)

    assert check_as_the_spec_says(note, cosignature.line, witness.verifier.vkey) == WHEN
    assert cosignature.line.startswith(f"\u2014 {WITNESS} ")


def test_the_signed_message_is_the_header_the_time_line_and_the_note_text():
    assert cosigned_message(b"o\n1\nr\n", 7) == b"cosignature/v1\ntime 7\no\n1\nr\n"


def test_cosignatures_on_a_note_are_found_among_other_lines_and_verified(witness, note):
    other = WitnessSigningKey.generate("other.example/witness")
    text = note.partition(b"\n\n")[0] + b"\n"
    cosigned = note + witness.cosign(text, WHEN).line.encode() + other.cosign(text, 1).line.encode()

    found = cosignatures(cosigned, [witness.verifier])

    assert [(c.witness.name, c.timestamp) for c in found] == [(WITNESS, WHEN)]


@pytest.mark.parametrize("change", [
    lambda note: note.replace(b"\n153\n", b"\n154\n"),  # another tree size
    lambda note: note.replace(b"registry.example.org", b"registry.example.net"),
])
def test_a_cosignature_does_not_verify_on_another_checkpoint(witness, note, change):
    line = witness.cosign(note.partition(b"\n\n")[0] + b"\n", WHEN).line

    with pytest.raises(CosignatureError, match="does not verify"):
        cosignatures(change(note) + line.encode(), [witness.verifier])


def test_a_cosignature_with_its_timestamp_changed_does_not_verify(witness, note):
    line = witness.cosign(note.partition(b"\n\n")[0] + b"\n", WHEN).line
    blob = base64.b64decode(line.split(" ")[2])
    forged = blob[:4] + (WHEN + 3600).to_bytes(8, "big") + blob[12:]
    forged_line = f"\u2014 {WITNESS} {base64.b64encode(forged).decode()}\n"

    with pytest.raises(CosignatureError, match="does not verify"):
        cosignatures(note + forged_line.encode(), [witness.verifier])
    with pytest.raises(InvalidSignature):
        check_as_the_spec_says(note, forged_line, witness.verifier.vkey)


def test_a_witness_key_file_is_read_back_as_the_same_key(witness):
    again = WitnessSigningKey.parse(witness.text)

    assert again == witness
    assert witness.text.startswith(f"PRIVATE+KEY+{WITNESS}+{witness.verifier.key_id.hex()}+")
    assert WitnessKey.parse(witness.verifier.vkey) == witness.verifier


@pytest.mark.parametrize("text, message", [
    ("PRIVATE+KEY+w+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
     "the key ID 00000000 is not the key's"),
    ("PRIVATE+KEY+w+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
     "not a witness's private key"),
    ("a key", "not a witness's private key"),
])
def test_a_malformed_witness_private_key_is_refused(text, message):
    with pytest.raises(CosignatureError, match=message):
        WitnessSigningKey.parse(text)


def test_a_log_key_is_not_a_witness_key():
    from ledger.audit.checkpoint import verifier_key

    key = SigningKey(Ed25519PrivateKey.generate())

    with pytest.raises(CosignatureError, match="not a witness key"):
        WitnessKey.parse(verifier_key(ORIGIN, key.public_pem))
