"""Checkpoints are C2SP signed notes: read here as the specs describe them (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint), with a parser written in this file, not Kapok's."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ledger.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    NotSignedByKeyError,
    sign_checkpoint,
    signed_note,
    split_notes,
    verifier_key,
)
from ledger.audit.keys import SigningKey

ORIGIN = "registry.example.org/audit"
ROOT = hashlib.sha256(b"a root").digest()

# The example of golang.org/x/mod/sumdb/note's documentation: its keys, text and signature.
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # 0x01 || Ed25519 seed
GO_TEXT = (b"If you think cryptography is the answer to your problem,\n"
           b"then you don't know what your problem is.\n")
GO_SIGNATURE = ("\N{EM DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
                "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def raw(key: SigningKey) -> bytes:
    return load_pem_public_key(key.public_pem).public_bytes_raw()


def spec_key_id(name: str, public: bytes) -> bytes:
    # signed-note: key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 key)[:4]
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public).digest()[:4]


def read_as_the_spec_says(note: bytes, name: str, public: bytes) -> tuple[str, int, bytes]:
    """origin, size and root of a checkpoint, its Ed25519 signature by (name, public) checked."""
    text, separator, signatures = note.decode("utf-8").partition("\n\n")
    assert separator and text  # the text, a blank line, the signature lines
    text += "\n"  # the signed text includes its final newline
    origin, size, root, *extensions = text.split("\n")[:-1]
    assert re.fullmatch(r"[1-9][0-9]*|0", size)
    lines = re.findall(r"^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$", signatures, re.MULTILINE)
    assert signatures.endswith("\n") and len(lines) == signatures.count("\n")
    (signer, encoded), = [line for line in lines if line[0] == name]
    blob = base64.b64decode(encoded)
    assert blob[:4] == spec_key_id(name, public)
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], text.encode())  # raises if bad
    return origin, int(size), base64.b64decode(root, validate=True)


def test_a_checkpoint_reads_as_the_specs_describe_it(key):
    note = sign_checkpoint(key, ORIGIN, 153, ROOT)

    assert read_as_the_spec_says(note, ORIGIN, raw(key)) == (ORIGIN, 153, ROOT)
    assert note.startswith(f"{ORIGIN}\n153\n{base64.b64encode(ROOT).decode()}\n\n\u2014 ".encode())


def test_the_key_id_is_the_specs_hash_of_name_type_and_key(key):
    note = sign_checkpoint(key, ORIGIN, 1, ROOT)
    signature = base64.b64decode(note.decode().rsplit(" ", 1)[1])

    assert signature[:4] == spec_key_id(ORIGIN, raw(key))
    assert len(signature) == 4 + 64


def test_the_verifier_key_is_name_hex_key_id_and_base64_type_and_key(key):
    text = verifier_key(ORIGIN, key.public_pem)
    name, key_id, encoded = text.split("+", 2)  # base64 may hold '+' too

    assert name == ORIGIN
    assert bytes.fromhex(key_id) == spec_key_id(ORIGIN, raw(key))
    assert base64.b64decode(encoded) == b"\x01" + raw(key)
    assert NoteVerifier.parse(text) == NoteVerifier.of(ORIGIN, key.public_pem)


def test_notes_sign_byte_for_byte_as_gos_sumdb_note_does():
    verifier = NoteVerifier.parse(GO_VERIFIER_KEY)
    seed = Ed25519PrivateKey.from_private_bytes(base64.b64decode(GO_SEED)[1:])

    note = signed_note(GO_TEXT, verifier.name, verifier.key_id, seed.sign(GO_TEXT))

    assert note == GO_TEXT + b"\n" + GO_SIGNATURE.encode()
    assert verifier.verifies(GO_TEXT, base64.b64decode(GO_SIGNATURE.split()[-1])[4:])


def test_a_checkpoint_parses_and_its_signature_is_checked(key):
    note = sign_checkpoint(key, ORIGIN, 42, ROOT)
    verifier = NoteVerifier.of(ORIGIN, key.public_pem)

    checkpoint = Checkpoint.parse(note, verifier, origin=ORIGIN)

    assert (checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash) == (ORIGIN, 42, ROOT)
    forged = note.replace(b"\n42\n", b"\n43\n")
    with pytest.raises(CheckpointError, match="does not verify"):
        Checkpoint.parse(forged, verifier)
    with pytest.raises(CheckpointError, match="not 'other.example/log'"):
        Checkpoint.parse(note, verifier, origin="other.example/log")


def test_signatures_of_other_keys_are_ignored_and_one_of_the_key_is_needed(key):
    other = SigningKey(Ed25519PrivateKey.generate())
    note = sign_checkpoint(key, ORIGIN, 7, ROOT)
    cosigned = note + sign_checkpoint(other, "witness.example/w1", 7, ROOT).split(b"\n\n")[1]

    assert Checkpoint.parse(cosigned, NoteVerifier.of(ORIGIN, key.public_pem)).tree_size == 7
    with pytest.raises(NotSignedByKeyError):
        Checkpoint.parse(note, NoteVerifier.of(ORIGIN, other.public_pem))


@pytest.mark.parametrize("note", [
    b"",
    b"origin\n12\n",
    f"{ORIGIN}\n012\n{base64.b64encode(ROOT).decode()}\n\n\u2014 x AAAA\n".encode(),
    f"{ORIGIN}\n12\nnot-base64\n\n\u2014 x AAAA\n".encode(),
    f"{ORIGIN}\n12\n{base64.b64encode(ROOT[:20]).decode()}\n\n\u2014 x AAAA\n".encode(),
    f"{ORIGIN}\n12\n{base64.b64encode(ROOT).decode()}\n\n- x AAAA\n".encode(),
])
def test_malformed_checkpoints_are_refused(key, note):
    with pytest.raises(CheckpointError):
        Checkpoint.parse(note, NoteVerifier.of(ORIGIN, key.public_pem))


@pytest.mark.parametrize("name", ["", "has space", "a+b", "tab\there"])
def test_a_name_with_space_or_plus_cannot_sign(key, name):
    with pytest.raises(CheckpointError):
        verifier_key(name, key.public_pem)


def test_a_file_of_notes_splits_into_each_note(key):
    notes = [sign_checkpoint(key, ORIGIN, size, ROOT) for size in (1, 2, 3)]

    assert split_notes(b"\n".join(notes) + b"\n") == notes
    assert split_notes(b"".join(notes)) == notes


def test_a_verifier_key_whose_base64_holds_a_plus_round_trips():
    seeds = (bytes([n]) * 32 for n in range(256))
    keys = (SigningKey(Ed25519PrivateKey.from_private_bytes(seed)) for seed in seeds)
    key = next(k for k in keys if "+" in verifier_key(ORIGIN, k.public_pem).split("+", 2)[2])

    assert NoteVerifier.parse(verifier_key(ORIGIN, key.public_pem)) == \
        NoteVerifier.of(ORIGIN, key.public_pem)


def test_the_documented_example_checkpoint_verifies_with_the_documented_key():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md").read_text(encoding="utf-8")
    note = re.search(r"```\n(kapok\.example/tambopata\n.*?\n)```", doc, re.DOTALL).group(1)
    name, key_id, encoded = re.search(r"`(kapok\.example/tambopata\+[0-9a-f]{8}\+\S+)`",
                                      doc).group(1).split("+", 2)
    public = base64.b64decode(encoded)[1:]

    assert bytes.fromhex(key_id) == spec_key_id(name, public)
    assert read_as_the_spec_says(note.encode(), name, public)[:2] == ("kapok.example/tambopata", 153)
