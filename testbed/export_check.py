"""An auditor's check of Kapok's JSON Lines export, written from docs/AUDIT.md alone ("The
leaf of an event", "Reading an event's fields from its bytes", "The bytes of a checkpoint",
"The export that proves itself"): it imports none of Kapok's code, so that the docs, not
Kapok's own functions, are what it holds Kapok to."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _tree_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1: MTH of the leaf hashes."""
    if not leaves:
        return _sha()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _sha(b"\x01", _tree_root(leaves[:split]), _tree_root(leaves[split:]))


def _consistent(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, for 0 < size1 < size2."""
    if not 0 < size1 < size2 or not proof:
        return False
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the proof's first node
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _sha(b"\x01", node, fr), _sha(b"\x01", node, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _sha(b"\x01", sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


def _read(value):
    """A state value by the docs' rule: wrapped values read as their data, serial blocks as
    serial numbers."""
    if isinstance(value, dict) and set(value) == {"_type_", "_data_"}:
        data = value["_data_"]
        if value["_type_"] == "block":
            vintage, batch, first, last, project, country = data
            return f"KAP-{batch}-{first}-{last}-{project.replace('-', '').upper()}-{vintage}-{country}"
        return _read(data)
    if isinstance(value, dict):
        return {key: _read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_read(item) for item in value]
    return value


def _checkpoint(note: str, name: str, key_id: bytes, key: Ed25519PublicKey) -> tuple[int, bytes]:
    """(size, root) of a checkpoint signed by the key; raises ValueError otherwise."""
    text, _, signatures = note.partition("\n\n")
    origin, size, root = text.split("\n")
    for line in signatures.splitlines():
        dash, signer, encoded = line.split(" ")
        signature = base64.b64decode(encoded)
        if dash == "\u2014" and signer == name and signature[:4] == key_id and origin == name:
            try:
                key.verify(signature[4:], (text + "\n").encode())
            except InvalidSignature:
                raise ValueError(f"the signature of the checkpoint of size {size} is bad") from None
            return int(size), base64.b64decode(root)
    raise ValueError(f"the checkpoint of size {size} bears no signature of {name}")


def export_problems(lines: list[str], verifier_key: str) -> list[str]:
    """Every problem the docs' checks find in an export; [] when it holds."""
    name, key_hex, encoded = verifier_key.strip().split("+", 2)
    raw = base64.b64decode(encoded)
    if raw[:1] != b"\x01" or _sha(name.encode(), b"\n", raw)[:4].hex() != key_hex:
        return ["the verifier key is not an Ed25519 note key with its own key ID"]
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    problems, leaves, roots, proofs, unlogged = [], [], {}, [], 0
    for number, text in enumerate(lines, 1):
        row = json.loads(text)
        if "checkpoint" in row:
            try:
                size, root = _checkpoint(row["checkpoint"], name, bytes.fromhex(key_hex), key)
            except ValueError as error:
                problems.append(f"line {number}: {error}")
                continue
            roots[size] = root
            if size > len(leaves) or _tree_root(leaves[:size]) != root:
                problems.append(f"line {number}: the leaves do not give the root of the "
                                f"checkpoint of size {size}")
            continue
        if "consistency_proof" in row:
            proofs.append((number, row["consistency_proof"]))
            continue
        data = base64.b64decode(row["leaf_input"])
        leaf = json.loads(data)
        state = base64.b64decode(leaf["state"])
        read = _read(json.loads(state))
        shown = {"event": row["event"], "timestamp": row["timestamp"], **row["fields"]}
        if _sha(b"\x00", data).hex() != row["leaf_hash"]:
            problems.append(f"line {number}: leaf_hash is not the hash of leaf_input")
        if any(leaf[key_] != row[key_] for key_ in ("originator_id", "originator_version",
                                                     "topic")):
            problems.append(f"line {number}: the line's id, version or topic is not the leaf's")
        if shown != {"event": leaf["topic"].partition(":")[2], **read}:
            problems.append(f"line {number}: the event, timestamp or fields shown are not "
                            "those of the stored state")
        if row["leaf_index"] is None:
            unlogged = unlogged or number  # fine at the end: not yet logged
        elif row["leaf_index"] != len(leaves) or unlogged:
            problems.append(f"line {number}: leaf_index {row['leaf_index']} where "
                            f"{'none' if unlogged else len(leaves)} comes next")
        else:
            leaves.append(_sha(b"\x00", data))
    for number, proof in proofs:
        old, new = proof["old_size"], proof["new_size"]
        if old not in roots or new not in roots or not _consistent(
                old, new, roots[old], roots[new], [base64.b64decode(h) for h in proof["proof"]]):
            problems.append(f"line {number}: no consistency from checkpoint {old} to {new}")
    if not roots:
        problems.append("the export holds no checkpoint")
    return problems
