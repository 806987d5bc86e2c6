"""Proof documents that anyone can check with ``ledger/audit/verifier.py`` alone."""

from __future__ import annotations

import base64

from ledger.audit.log import AuditLog, notification_leaf
from ledger.audit.verifier import read_state
from ledger.domain.errors import InvalidInputError, LedgerError, NotYetSignedError


class ProofRangeError(LedgerError, InvalidInputError):
    """Tree sizes a proof cannot be made between."""


def retirement_proof(ledger, log: AuditLog, retirement_id: str, public_pem: bytes) -> dict:
    """The retirement's event, its inclusion proof and the latest signed head.

    The log must have been followed past the retirement. Raises UnknownRetirementError,
    NotYetSignedError."""
    position = ledger.view.retirement_position(retirement_id)
    if position is None:
        ledger.get_retirement(retirement_id)  # raises UnknownRetirementError
        raise NotYetSignedError(
            f"retirement {retirement_id} is recorded but not yet in the registry's index; "
            "its proof is ready within minutes")
    return inclusion_document(ledger, log, position, public_pem)


def inclusion_document(app, log: AuditLog, position: int, public_pem: bytes) -> dict:
    leaf_index = log.leaf_index(position)
    head = log.latest_head()
    if leaf_index is None or head is None or leaf_index >= head.tree_size:
        raise NotYetSignedError(
            f"event {position} is recorded but not yet under a signed tree head; the proof is "
            "ready once the audit log signs its next head (the background worker does so "
            "within minutes; `kapok audit follow` does it at once)")
    notification = app.recorder.select_notifications(start=position, limit=1)[0]
    read = read_state(notification.topic, bytes(notification.state))
    return {
        "kind": "kapok-inclusion-proof-v1",
        "event": {
            "position": position,
            "leaf_index": leaf_index,
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "topic": notification.topic,
            "state": base64.b64encode(bytes(notification.state)).decode(),
            # Read from the state by the documented rule, so a verifier can read it again.
            "decoded": {"event": read["event"], "timestamp": read["timestamp"],
                        **read["fields"]},
        },
        "leaf_hash": notification_leaf(notification).hex(),
        "inclusion_proof": [node.hex() for node in log.inclusion_proof(leaf_index, head.tree_size)],
        "tree_head": head.as_dict(public_pem),
    }


def consistency_document(log: AuditLog, size1: int, size2: int, public_pem: bytes) -> dict:
    """Proof that the signed head of ``size1`` is a prefix of the one of ``size2``."""
    first, second = log.head(size1), log.head(size2)
    return {
        "kind": "kapok-consistency-proof-v1",
        "first": first.as_dict(public_pem),
        "second": second.as_dict(public_pem),
        "proof": [node.hex() for node in log.consistency_proof(size1, size2)],
    }


def public_consistency_proof(log: AuditLog, old_size: int, new_size: int) -> dict:
    """The RFC 6962 consistency proof from the tree of ``old_size`` leaves to the one of
    ``new_size``, which no signed checkpoint may be smaller than. Raises ProofRangeError,
    NotYetSignedError before the first checkpoint."""
    note = log.latest_checkpoint()
    if note is None:
        raise NotYetSignedError("no checkpoint signed yet")
    latest = int(note.split(b"\n", 2)[1])
    if not 0 <= old_size <= new_size <= latest:
        raise ProofRangeError(
            f"no consistency proof from size {old_size} to {new_size}: the sizes must satisfy "
            f"0 <= old <= new <= {latest}, the latest checkpoint's size")
    return {"old_size": old_size, "new_size": new_size,
            "proof": [base64.b64encode(node).decode()
                      for node in log.consistency_proof(old_size, new_size)]}
