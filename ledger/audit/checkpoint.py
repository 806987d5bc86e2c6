"""Checkpoints: the log's signed tree heads as C2SP signed notes (c2sp.org/tlog-checkpoint).

A checkpoint's note text is three lines, the log's origin, the tree size in decimal and the
root hash in standard base64, each ending in a newline; a blank line follows, then one
signature line ``— <key name> <base64(key ID || Ed25519 signature of the text)>``. The key ID
is the first four bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key), and the
key is published as ``<name>+<hex key ID>+<base64(0x01 || public key)>`` (c2sp.org/signed-note),
so Go's ``sumdb/note``, sigstore's checkpoint code and witnesses read Kapok's heads as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from ledger.audit import keys
from ledger.domain.errors import ConflictError, InvalidInputError, LedgerError

ED25519 = b"\x01"  # the signature type of plain Ed25519 note signatures
SIGNATURE_PREFIX = "\N{EM DASH} "
# A key name or origin: no space, no plus (the verifier key's separator), no control character.
_NAME = re.compile(r"[^\s+\x00-\x1f\x7f]+")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(LedgerError, InvalidInputError):
    """A note that is not a checkpoint of this log, or whose signature does not verify."""


class NotSignedByKeyError(CheckpointError):
    """A well-formed note that carries no signature of the key asked about."""


class EquivocationError(LedgerError, ConflictError):
    """Signing would contradict a checkpoint already published: a second root for one size,
    or a smaller tree than one already signed."""


def check_name(name: str) -> str:
    """Returns ``name`` if it can be a key name or origin; raises CheckpointError."""
    if not _NAME.fullmatch(name or ""):
        raise CheckpointError(f"{name!r} cannot name a log or key: it must be non-empty, "
                              "without spaces or '+'")
    return name


def raw_public_key(public_pem: bytes) -> bytes:
    """The 32 bytes of an Ed25519 public key given in PEM; raises CheckpointError."""
    try:
        return keys.raw_public_key(public_pem)
    except keys.SigningKeyError as error:
        raise CheckpointError(str(error)) from None


def key_id(name: str, public_raw: bytes, algorithm: bytes = ED25519) -> bytes:
    """The 4-byte key ID of a note key: of a log's Ed25519 key by default, of a witness's
    with the cosignature's algorithm byte (ledger/audit/cosignature.py)."""
    return hashlib.sha256(name.encode() + b"\n" + algorithm + public_raw).digest()[:4]


def parse_vkey(text: str, algorithm: bytes = ED25519) -> tuple[str, bytes, bytes]:
    """(name, key ID, 32-byte public key) of ``<name>+<hex key ID>+<base64(algorithm || key)>``;
    raises CheckpointError unless the key is of that algorithm and the ID is the key's own."""
    # Only the first two '+' separate: base64 has its own.
    name, hash_hex, encoded = (text.strip().split("+", 2) + ["", ""])[:3]
    try:
        key = base64.b64decode(encoded, validate=True)
        given_id = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{text.strip()[:80]!r} is not a note verifier key") from None
    if len(given_id) != 4 or key[:1] != algorithm or len(key) != 33:
        raise CheckpointError(f"{text.strip()[:80]!r} is not a verifier key of type "
                              f"0x{algorithm.hex()} (Ed25519)")
    if key_id(check_name(name), key[1:], algorithm) != given_id:
        raise CheckpointError(f"verifier key {name}: the key ID {hash_hex} is not the key's")
    return name, given_id, key[1:]


def verifier_key(name: str, public_pem: bytes) -> str:
    """The key in note format: ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    raw = raw_public_key(public_pem)
    return (f"{check_name(name)}+{key_id(name, raw).hex()}+"
            f"{base64.b64encode(ED25519 + raw).decode()}")


@dataclass(frozen=True)
class NoteVerifier:
    """A note key as a verifier knows it: its name, ID and 32-byte public key."""

    name: str
    key_id: bytes
    public_raw: bytes

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Reads ``<name>+<hex key ID>+<base64 key>``; raises CheckpointError unless the
        key is Ed25519 and the ID is the key's own."""
        return cls(*parse_vkey(text))

    @classmethod
    def of(cls, name: str, public_pem: bytes) -> NoteVerifier:
        raw = raw_public_key(public_pem)
        return cls(check_name(name), key_id(name, raw), raw)

    def verifies(self, text: bytes, signature: bytes) -> bool:
        return keys.ed25519_verifies(self.public_raw, text, signature)


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes) -> bytes:
    """The note text of a checkpoint: what the key signs."""
    return f"{check_name(origin)}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n".encode()


def signed_note(text: bytes, key_name: str, key_id_: bytes, signature: bytes) -> bytes:
    """The note text, a blank line and one signature line."""
    encoded = base64.b64encode(key_id_ + signature).decode()
    return text + b"\n" + f"{SIGNATURE_PREFIX}{key_name} {encoded}\n".encode()


def sign_checkpoint(key, origin: str, tree_size: int, root_hash: bytes) -> bytes:
    """The signed note of a checkpoint, signed by ``key`` (a SigningKey) under the origin's
    name."""
    text = checkpoint_text(origin, tree_size, root_hash)
    return signed_note(text, origin, key_id(origin, raw_public_key(key.public_pem)),
                       key.sign(text))


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: the tree it commits to and its signed note, byte for byte."""

    origin: str
    tree_size: int
    root_hash: bytes
    note: bytes

    @property
    def text(self) -> str:
        return self.note.decode()

    @classmethod
    def parse(cls, note: bytes, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
        """Reads a signed checkpoint and checks the signature of ``verifier`` on it (other
        signatures, e.g. witnesses', are ignored). Raises CheckpointError if the note is
        malformed, of another origin, or carries no valid signature of that key."""
        body, signatures = split_note(note)
        lines = body.split("\n")
        if len(lines) < 3 or not _SIZE.fullmatch(lines[1]):
            raise CheckpointError("not a checkpoint: origin, tree size and root hash lines")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except binascii.Error:
            root = b""
        if len(root) != 32:
            raise CheckpointError(f"checkpoint root {lines[2][:60]!r} is not a base64 SHA-256 hash")
        if origin is not None and lines[0] != origin:
            raise CheckpointError(f"the checkpoint is of log {lines[0]!r}, not {origin!r}")
        text = (body + "\n").encode()
        if not _signed_by(text, signatures, verifier):
            raise NotSignedByKeyError(f"the checkpoint of size {lines[1]} bears no signature "
                                  f"of key {verifier.name}+{verifier.key_id.hex()}")
        return cls(lines[0], int(lines[1]), root, note)


def split_note(note: bytes) -> tuple[str, str]:
    """(text without its final newline, signature lines) of a signed note; raises
    CheckpointError unless it is UTF-8 text, a blank line and signature lines."""
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("a checkpoint must be UTF-8 text") from None
    body, blank, signatures = decoded.partition("\n\n")
    if not blank or not signatures.endswith("\n") or re.search(r"[\x00-\x09\x0b-\x1f]",
                                                                 decoded):
        raise CheckpointError("not a signed note: text, a blank line, signature lines")
    return body, signatures


def signature_lines(signatures: str) -> list[tuple[str, bytes]]:
    """(key name, key ID || signature) of each line of a note's signature block, which ends
    with a newline; raises CheckpointError for a malformed line."""
    found = []
    for line in signatures[:-1].split("\n"):
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or not encoded:
            raise CheckpointError(f"malformed signature line {line[:80]!r}")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError(f"malformed signature line {line[:80]!r}") from None
        if len(signature) < 5:
            raise CheckpointError(f"malformed signature line {line[:80]!r}")
        found.append((name, signature))
    return found


def _signed_by(text: bytes, signatures: str, verifier: NoteVerifier) -> bool:
    found = False
    for name, signature in signature_lines(signatures):
        if name != verifier.name or signature[:4] != verifier.key_id:
            continue  # another key's signature
        if not verifier.verifies(text, signature[4:]):
            raise CheckpointError(f"the signature of key {name} does not verify")
        found = True
    return found


def split_notes(data: bytes) -> list[bytes]:
    """The notes of a file holding several, one after another (as the checkpoint file does):
    each ends with its signature lines, the next starts after a blank line."""
    notes, current = [], []
    in_signatures = False
    for line in data.splitlines(keepends=True):
        if in_signatures and not line.startswith(SIGNATURE_PREFIX.encode()):
            notes.append(b"".join(current))
            current, in_signatures = [], False
            if line == b"\n":
                continue
        if line == b"\n" and current and not in_signatures:
            in_signatures = True
        current.append(line)
    if current:
        notes.append(b"".join(current))
    return notes
