"""Check Kapok's signed tree heads and Merkle proofs: one file, the standard library only.

Auditors copy this file and run it without Kapok installed, so it must never import Kapok;
checking signatures also needs the ``cryptography`` package. The tree is Certificate
Transparency's (RFC 6962 / RFC 9162): SHA-256 with domain-separated leaf and node hashes.

    python verifier.py PROOF.json --public-key KEY.pem
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
TREE_HEAD_PREFIX = b"kapok-tree-head-v1\x00"
INCLUSION_KIND = "kapok-inclusion-proof-v1"
CONSISTENCY_KIND = "kapok-consistency-proof-v1"


# Text json.dumps leaves as it is (no quote, backslash, control or non-ASCII character).
_PLAIN = re.compile(r"[A-Za-z0-9_.:\-]*")


def leaf_input(originator_id: str, originator_version: int, topic: str, state: bytes) -> bytes:
    """The canonical encoding of one stored event; its timestamp lives inside ``state``."""
    if _PLAIN.fullmatch(originator_id) and _PLAIN.fullmatch(topic):
        # What json.dumps below gives for text that needs no escaping, written directly:
        # it runs once per event when verifying millions of them.
        return (f'{{"originator_id":"{originator_id}","originator_version":'
                f'{int(originator_version)},"state":"{base64.b64encode(state).decode()}",'
                f'"topic":"{topic}"}}').encode()
    return json.dumps(
        {"originator_id": originator_id, "originator_version": originator_version,
         "topic": topic, "state": base64.b64encode(state).decode()},
        sort_keys=True, separators=(",", ":"),
    ).encode()


def read_value(value):
    """A stored state's value read as docs/AUDIT.md says: each value eventsourcing's
    transcoder wrapped, ``{"_type_": T, "_data_": D}``, as D, and a serial block as its serial
    number."""
    if isinstance(value, dict) and value.keys() == {"_type_", "_data_"}:
        data = value["_data_"]
        if value["_type_"] == "block":
            vintage, batch, first, last, project, country = data
            return (f"KAP-{int(batch)}-{int(first)}-{int(last)}-"
                    f"{str(project).replace('-', '').upper()}-{int(vintage)}-{country}")
        return read_value(data)
    if isinstance(value, dict):
        return {key: read_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [read_value(item) for item in value]
    return value


def read_state(topic: str, state: bytes) -> dict:
    """{"event", "timestamp", "fields"} of a stored event, read from its bytes alone: the
    class after the topic's colon, and the state's JSON object read by ``read_value``, its
    timestamp apart. Raises ValueError if the state is not such an object."""
    try:
        fields = read_value(json.loads(state))
    except (TypeError, ValueError):  # not JSON, or a serial block of the wrong shape
        raise ValueError("the state is not JSON Kapok could have written") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("timestamp"), str):
        raise ValueError("the state is not a JSON object with a timestamp")
    timestamp = fields.pop("timestamp")
    return {"event": topic.partition(":")[2], "timestamp": timestamp, "fields": fields}


def leaf_hash(data: bytes) -> bytes:
    # The 0x00 / 0x01 prefixes keep a leaf from ever passing for an inner node (RFC 6962 2.1).
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_head_message(tree_size: int, timestamp_ms: int, root: bytes) -> bytes:
    """The bytes the registry signs for a tree head; raises OverflowError past 64 bits."""
    return TREE_HEAD_PREFIX + tree_size.to_bytes(8, "big") + timestamp_ms.to_bytes(8, "big") + root


def _load_public_key(public_key_pem: bytes):
    """Raises ValueError for anything but an Ed25519 public key in PEM."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def verify_signature(public_key_pem: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is the key's Ed25519 signature of ``message``.

    A bad signature gives False; an unusable key raises ValueError.
    """
    from cryptography.exceptions import InvalidSignature

    key = _load_public_key(public_key_pem)
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _is_hash(value) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _are_hashes(values) -> bool:
    return isinstance(values, list) and all(_is_hash(value) for value in values)


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: list[bytes],
                     root: bytes) -> bool:
    """True if ``proof`` shows the leaf at ``index`` in the tree of ``tree_size`` with ``root``.

    RFC 9162 section 2.1.3.2; malformed input gives False.
    """
    if not (0 <= index < tree_size and _is_hash(leaf_hash) and _is_hash(root)
            and _are_hashes(proof)):
        return False
    fn, sn, computed = index, tree_size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            # Climb past the levels where this node has no right sibling (the ragged edge).
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and computed == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: list[bytes]) -> bool:
    """True if ``proof`` shows the tree (size2, root2) extends the tree (size1, root1).

    RFC 9162 section 2.1.4.2, plus its edge cases: equal sizes need equal roots and an empty
    proof; every tree extends the empty one, whose root must be EMPTY_ROOT. Malformed input
    gives False.
    """
    if not (0 <= size1 <= size2 and _is_hash(root1) and _is_hash(root2) and _are_hashes(proof)):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    if not proof:
        return False
    # When the old tree is a perfect subtree of the new one, the proof leaves out its root.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old = new = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old, new = node_hash(sibling, old), node_hash(sibling, new)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new = node_hash(new, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old == root1 and new == root2


class ProofFormatError(ValueError):
    """A proof document lacks a field or holds one of the wrong kind."""


def _field(mapping, name: str, kind: type, where: str):
    if not isinstance(mapping, dict) or name not in mapping:
        raise ProofFormatError(f"missing field {where}{name}")
    value = mapping[name]
    # bool is an int to Python, never to a proof.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProofFormatError(f"field {where}{name} is not of type {kind.__name__}")
    return value


def _count(mapping, name: str, where: str) -> int:
    value = _field(mapping, name, int, where)
    if not 0 <= value < 2**64:
        raise ProofFormatError(f"field {where}{name} is out of range")
    return value


def _hash(text, name: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except (TypeError, ValueError):
        value = None
    if not _is_hash(value):
        raise ProofFormatError(f"field {name} is not a {HASH_SIZE}-byte hex hash")
    return value


def _hashes(mapping, name: str, where: str = "") -> list[bytes]:
    return [_hash(item, f"{where}{name}[{i}]")
            for i, item in enumerate(_field(mapping, name, list, where))]


def _tree_head(document, name: str) -> dict:
    head = _field(document, name, dict, "")
    where = f"{name}."
    signature = _field(head, "signature", str, where)
    try:
        signature = bytes.fromhex(signature)
    except ValueError:
        raise ProofFormatError(f"field {where}signature is not hex") from None
    return {"tree_size": _count(head, "tree_size", where),
            "timestamp_ms": _count(head, "timestamp_ms", where),
            "root": _hash(_field(head, "root_hash", str, where), f"{where}root_hash"),
            "signature": signature}


def _signature_problems(head: dict, name: str, public_key_pem: bytes) -> list[str]:
    message = tree_head_message(head["tree_size"], head["timestamp_ms"], head["root"])
    if verify_signature(public_key_pem, message, head["signature"]):
        return []
    return [f"the signature of {name} does not verify with the given public key"]


def _inclusion_problems(document: dict, public_key_pem: bytes) -> list[str]:
    event = _field(document, "event", dict, "")
    try:
        state = base64.b64decode(_field(event, "state", str, "event."), validate=True)
    except ValueError:
        raise ProofFormatError("field event.state is not base64") from None
    _count(event, "position", "event.")  # informational, but part of the documented shape
    index = _count(event, "leaf_index", "event.")
    computed = leaf_hash(leaf_input(_field(event, "originator_id", str, "event."),
                                    _count(event, "originator_version", "event."),
                                    _field(event, "topic", str, "event."), state))
    claimed = _hash(_field(document, "leaf_hash", str, ""), "leaf_hash")
    proof = _hashes(document, "inclusion_proof")
    head = _tree_head(document, "tree_head")
    problems = _decoded_problems(event, state)
    if computed != claimed:
        problems.append(f"leaf_hash {claimed.hex()} is not the hash of the event, "
                        f"which is {computed.hex()}")
    if not verify_inclusion(computed, index, head["tree_size"], proof, head["root"]):
        problems.append(f"the inclusion proof does not place the event at leaf {index} "
                        f"of the tree of size {head['tree_size']}")
    return problems + _signature_problems(head, "the tree head", public_key_pem)


def _decoded_problems(event: dict, state: bytes) -> list[str]:
    """The fields a document shows must be the stored state's: only the state is hashed."""
    if "decoded" not in event:
        return []
    try:
        read = read_state(event["topic"], state)
    except ValueError:
        return ["event.decoded is shown, but the stored state cannot be read"]
    if event["decoded"] != {"event": read["event"], "timestamp": read["timestamp"],
                            **read["fields"]}:
        return ["event.decoded is not what the stored state says"]
    return []


def _consistency_problems(document: dict, public_key_pem: bytes) -> list[str]:
    first, second = _tree_head(document, "first"), _tree_head(document, "second")
    proof = _hashes(document, "proof")
    problems = []
    if not verify_consistency(first["tree_size"], second["tree_size"],
                              first["root"], second["root"], proof):
        problems.append(f"the consistency proof does not show the tree of size "
                        f"{second['tree_size']} extending the tree of size {first['tree_size']}")
    return (problems + _signature_problems(first, "the first tree head", public_key_pem)
            + _signature_problems(second, "the second tree head", public_key_pem))


def verify_proof_file(document: dict, public_key_pem: bytes) -> list[str]:
    """Every problem with an inclusion or consistency proof document; [] when it holds.

    Signatures are checked with ``public_key_pem``, never with a key the document carries.
    Raises ValueError only for an unusable public key.
    """
    checks = {INCLUSION_KIND: _inclusion_problems, CONSISTENCY_KIND: _consistency_problems}
    try:
        kind = _field(document, "kind", str, "")
        if kind not in checks:
            return [f"unknown proof kind {kind!r}"]
        return checks[kind](document, public_key_pem)
    except ProofFormatError as error:
        return [str(error)]


def _signed_at(head: dict) -> str:
    moment = datetime.fromtimestamp(head["timestamp_ms"] / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _proven(document: dict) -> str:
    """What a valid document proves, in words; only for documents that verified."""
    if document["kind"] == INCLUSION_KIND:
        event, head = document["event"], _tree_head(document, "tree_head")
        # Not the position: the database's row number is not what the leaf hashes.
        return (f"the event {event['topic']} of {event['originator_id']} version "
                f"{event['originator_version']} is leaf {event['leaf_index']} of the ledger's "
                f"tree of {head['tree_size']} events signed at {_signed_at(head)}")
    first, second = _tree_head(document, "first"), _tree_head(document, "second")
    return (f"the tree of {second['tree_size']} events signed at {_signed_at(second)} extends "
            f"the tree of {first['tree_size']} events signed at {_signed_at(first)}")


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the proof holds, 1 when it does not, 2 when the files cannot be used."""
    parser = argparse.ArgumentParser(description="Check a Kapok proof file.")
    parser.add_argument("proof", type=Path, help="the proof document (JSON)")
    parser.add_argument("--public-key", required=True, type=Path,
                        help="the registry's Ed25519 public key (PEM), obtained separately")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.proof.read_text(encoding="utf-8"))
        public_key_pem = args.public_key.read_bytes()
        _load_public_key(public_key_pem)
    except (OSError, ValueError, ImportError) as error:
        print(f"cannot use the files: {error}", file=sys.stderr)
        return 2
    problems = verify_proof_file(document, public_key_pem)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"OK: {_proven(document)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
