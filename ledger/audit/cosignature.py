"""Witnesses' cosignatures of checkpoints (c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``).

A cosignature is one more signature line on a checkpoint, by a witness's key:
``— <witness name> base64(key ID || timestamp || signature)``. The key ID is the first four
bytes of SHA-256(name || 0x0A || 0x04 || 32-byte public key), 0x04 being the cosignature's
algorithm byte; the timestamp is the POSIX time of cosigning, 8 bytes big-endian; the
Ed25519 signature covers ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's
note text. A witness publishes ``<name>+<hex key ID>+<base64(0x04 || key)>`` and keeps
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``, the form of Go's note signer keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ledger.audit import keys
from ledger.audit.checkpoint import (
    SIGNATURE_PREFIX,
    CheckpointError,
    check_name,
    key_id,
    parse_vkey,
    signature_lines,
    split_note,
)

COSIGNATURE_ED25519 = b"\x04"
HEADER = b"cosignature/v1\n"
_LATEST_TIMESTAMP = 2**63 - 1
_PRIVATE = re.compile(r"PRIVATE\+KEY\+([^+]+)\+([0-9a-f]{8})\+(\S+)")


class CosignatureError(CheckpointError):
    """A witness key or cosignature that is malformed, or a cosignature that does not verify."""


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What a witness signs: the header, the time line and the checkpoint's note text."""
    if not 0 <= timestamp <= _LATEST_TIMESTAMP:
        raise CosignatureError(f"a cosignature's timestamp must be 0 to 2^63-1, not {timestamp}")
    return HEADER + f"time {timestamp}\n".encode() + text


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public key, as the log and clients are configured with it."""

    name: str
    key_id: bytes
    public_raw: bytes

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        """Reads ``<name>+<hex key ID>+<base64(0x04 || key)>``; raises CosignatureError."""
        try:
            return cls(*parse_vkey(vkey, COSIGNATURE_ED25519))
        except CosignatureError:
            raise
        except CheckpointError as error:
            raise CosignatureError(f"not a witness key: {error}") from None

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(COSIGNATURE_ED25519 + self.public_raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def cosignature(self, text: bytes, signed: bytes) -> Cosignature:
        """The cosignature of note ``text`` whose signature line carries ``signed`` (key ID,
        timestamp, signature); raises CosignatureError unless it verifies."""
        if signed[:4] != self.key_id or len(signed) != 4 + 8 + 64:
            raise CosignatureError(f"the cosignature of witness {self.name} is malformed")
        timestamp = int.from_bytes(signed[4:12], "big")
        if not keys.ed25519_verifies(self.public_raw, cosigned_message(text, timestamp),
                                     signed[12:]):
            raise CosignatureError(f"the cosignature of witness {self.name} does not verify")
        line = f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(signed).decode()}\n"
        return Cosignature(self, timestamp, line)


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: whose, when, and its signature line (newline included)."""

    witness: WitnessKey
    timestamp: int
    line: str


@dataclass(frozen=True)
class WitnessSigningKey:
    """A witness's private key and name."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> WitnessSigningKey:
        return cls(check_name(name), keys.new_ed25519_seed())

    @classmethod
    def parse(cls, text: str) -> WitnessSigningKey:
        """Reads ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``; raises
        CosignatureError unless it is a witness key whose ID is its own."""
        match = _PRIVATE.fullmatch(text.strip())
        try:
            seed = base64.b64decode(match.group(3), validate=True) if match else b""
        except binascii.Error:
            seed = b""
        if seed[:1] != COSIGNATURE_ED25519 or len(seed) != 33:
            raise CosignatureError("not a witness's private key (PRIVATE+KEY+<name>+<key ID>+"
                                   "<base64(0x04 || Ed25519 seed)>)")
        key = cls(check_name(match.group(1)), seed[1:])
        if key.verifier.key_id.hex() != match.group(2):
            raise CosignatureError(f"witness key {key.name}: the key ID {match.group(2)} is "
                                   "not the key's")
        return key

    @property
    def text(self) -> str:
        encoded = base64.b64encode(COSIGNATURE_ED25519 + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}\n"

    @property
    def verifier(self) -> WitnessKey:
        public = keys.ed25519_public_of(self.seed)
        return WitnessKey(self.name, key_id(self.name, public, COSIGNATURE_ED25519), public)

    def cosign(self, text: bytes, timestamp: int) -> Cosignature:
        """The cosignature of checkpoint note ``text``, made at ``timestamp``."""
        signature = keys.ed25519_sign(self.seed, cosigned_message(text, timestamp))
        return self.verifier.cosignature(
            text, self.verifier.key_id + timestamp.to_bytes(8, "big") + signature)


def cosignatures(note: bytes, witnesses: list[WitnessKey]) -> list[Cosignature]:
    """The cosignatures on a signed note by ``witnesses``, each verified; lines of other keys
    (the log's own, unknown witnesses') are passed over. Raises CosignatureError when a
    line of one of these witnesses does not verify, CheckpointError for a malformed note."""
    body, signatures = split_note(note)
    text = (body + "\n").encode()
    by_id = {(witness.name, witness.key_id): witness for witness in witnesses}
    return [by_id[name, signed[:4]].cosignature(text, signed)
            for name, signed in signature_lines(signatures) if (name, signed[:4]) in by_id]
