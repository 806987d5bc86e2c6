"""What anyone may fetch to check Kapok's audit log: the public key and the signed heads,
the latter also as C2SP checkpoints (c2sp.org/tlog-checkpoint) that others' tools read."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify

from ledger.audit.checkpoint import verifier_key
from ledger.audit.keys import SigningKeyError, load_public_key, public_key_file, signing_key_file
from ledger.audit.log import AuditLog
from ledger.domain.errors import LedgerError, NotYetSignedError

bp = Blueprint("transparency", __name__, url_prefix="/audit")


def _public_key() -> bytes:
    private = signing_key_file()
    published = public_key_file(private)
    try:
        return load_public_key(published if published.exists() else private)
    except SigningKeyError:
        abort(404, description="no signing key is configured")


@bp.get("/public-key.pem")
def public_key():
    """The Ed25519 public key that verifies every signed tree head."""
    return Response(_public_key(), mimetype="application/x-pem-file")


@bp.get("/verifier-key")
def note_verifier_key():
    """The same key in signed-note form, ``<name>+<key ID>+<key>``, as Go's sumdb/note and
    witnesses take it."""
    key = verifier_key(AuditLog(current_app.extensions["kapok_market"]).origin, _public_key())
    return Response(key + "\n", mimetype="text/plain")


@bp.get("/checkpoint")
def latest_checkpoint():
    """The latest checkpoint: a signed note of the log's origin, size and root hash."""
    note = AuditLog(current_app.extensions["kapok_market"]).latest_checkpoint()
    if note is None:
        return jsonify(code=404, status="Not Found", message="no checkpoint signed yet"), 404
    return Response(note, mimetype="text/plain")


@bp.get("/tree-head")
def latest_tree_head():
    """The latest signed tree head (size, root, time, signature)."""
    head = AuditLog(current_app.extensions["kapok_market"]).latest_head()
    if head is None:
        return jsonify(code=404, status="Not Found", message="no signed tree head yet"), 404
    return jsonify(head.as_dict(_public_key()))


@bp.get("/proofs/<retirement_id>.json")
def retirement_proof(retirement_id: str):
    """A retirement's inclusion proof, checkable with ledger/audit/verifier.py alone."""
    from ledger.audit.proofs import retirement_proof as build

    market = current_app.extensions["kapok_market"]
    try:
        document = build(market.ledger, AuditLog(market), retirement_id, _public_key())
    except NotYetSignedError as error:  # the worker signs the next head within minutes
        return jsonify(code=404, status="Not Found", message=str(error)), 404, {
            "Retry-After": "60"}
    except LedgerError as error:
        return jsonify(code=404, status="Not Found", message=str(error)), 404
    return jsonify(document)
