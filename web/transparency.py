"""What anyone may fetch to check Kapok's audit log: the public key, the signed heads, also as
C2SP checkpoints (c2sp.org/tlog-checkpoint) that others' tools read, consistency proofs, and
the checkpoint cosigned by witnesses, who return their cosignatures here."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ledger.audit.checkpoint import verifier_key
from ledger.audit.cosigned import Cosignatures, UntrustedWitnessError
from ledger.audit.keys import SigningKeyError, load_public_key, public_key_file, signing_key_file
from ledger.audit.log import AuditLog
from ledger.audit.proofs import public_consistency_proof
from ledger.domain.errors import LedgerError, NotYetSignedError
from ledger.error_codes import codes_for

# A checkpoint with a few dozen signature lines is a few kilobytes.
COSIGNED_NOTE_LIMIT = 64 * 1024

bp = Blueprint("transparency", __name__, url_prefix="/audit")


def _json_error(status: int, message: str):
    from werkzeug.http import HTTP_STATUS_CODES

    return jsonify(code=status, status=HTTP_STATUS_CODES[status], message=message), status


def _log() -> AuditLog:
    return AuditLog(current_app.extensions["kapok_market"])


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
    key = verifier_key(_log().origin, _public_key())
    return Response(key + "\n", mimetype="text/plain")


@bp.get("/checkpoint")
def latest_checkpoint():
    """The latest checkpoint: a signed note of the log's origin, size and root hash."""
    note = _log().latest_checkpoint()
    if note is None:
        return _json_error(404, "no checkpoint signed yet")
    return Response(note, mimetype="text/plain")


@bp.get("/checkpoint.cosigned")
def cosigned_checkpoint():
    """The largest checkpoint that witnesses Kapok trusts have cosigned, with their
    cosignature lines (c2sp.org/tlog-cosignature) after Kapok's signature."""
    note = Cosignatures(_log()).cosigned_checkpoint(current_app.config["WITNESS_KEYS"])
    if note is None:
        return _json_error(404, "no checkpoint cosigned yet by a witness Kapok trusts")
    return Response(note, mimetype="text/plain")


@bp.post("/cosignatures")
def add_cosignatures():
    """A witness returns a checkpoint of this log with its cosignature line; Kapok keeps the
    cosignatures of the witnesses it trusts (KAPOK_WITNESS_KEYS)."""
    if (request.content_length or 0) > COSIGNED_NOTE_LIMIT:
        return _json_error(413, f"a cosigned checkpoint is at most {COSIGNED_NOTE_LIMIT} bytes")
    try:
        size, accepted = Cosignatures(_log()).accept(request.get_data(),
                                                     current_app.config["WITNESS_KEYS"])
    except UntrustedWitnessError as error:
        return _json_error(403, str(error))
    except LedgerError as error:
        return _json_error(codes_for(error).http_status, str(error))
    return jsonify(tree_size=size,
                   witnesses=[cosignature.witness.name for cosignature in accepted])


@bp.get("/consistency")
def consistency_proof():
    """The RFC 6962 consistency proof between two tree sizes, ``?old=M&new=N`` (N at most
    the latest checkpoint's), its hashes in base64."""
    sizes = [request.args.get(name, "").strip() for name in ("old", "new")]
    if not all(size.isascii() and size.isdigit() and len(size) < 19 for size in sizes):
        return _json_error(400, "old and new must be tree sizes, whole numbers: "
                                "/audit/consistency?old=M&new=N")
    try:
        return jsonify(public_consistency_proof(_log(), int(sizes[0]), int(sizes[1])))
    except LedgerError as error:
        return _json_error(codes_for(error).http_status, str(error))


@bp.get("/tree-head")
def latest_tree_head():
    """The latest signed tree head (size, root, time, signature)."""
    head = _log().latest_head()
    if head is None:
        return _json_error(404, "no signed tree head yet")
    return jsonify(head.as_dict(_public_key()))


@bp.get("/proofs/<retirement_id>.json")
def retirement_proof(retirement_id: str):
    """A retirement's inclusion proof, checkable with ledger/audit/verifier.py alone."""
    from ledger.audit.proofs import retirement_proof as build

    market = current_app.extensions["kapok_market"]
    try:
        document = build(market.ledger, AuditLog(market), retirement_id, _public_key())
    except NotYetSignedError as error:  # the worker signs the next head within minutes
        return (*_json_error(404, str(error)), {"Retry-After": "60"})
    except LedgerError as error:
        return _json_error(404, str(error))
    return jsonify(document)
