"""What anyone may fetch to check Kapok's audit log: the public key and the signed heads,
the latter also as C2SP checkpoints (c2sp.org/tlog-checkpoint) that others' tools read; old
checkpoints, consistency and inclusion proofs, entries and C2SP tlog-tiles hash tiles
(docs/AUDIT.md); the checkpoint cosigned by witnesses, who return their cosignatures here; and
the small verifier of a retirement's proof."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for

from ledger.audit import public_log, verify_retirement
from ledger.audit.checkpoint import verifier_key
from ledger.audit.cosigned import Cosignatures, UntrustedWitnessError
from ledger.audit.keys import SigningKeyError, load_public_key, public_key_file, signing_key_file
from ledger.audit.log import AuditLog
from ledger.audit.proofs import public_consistency_proof
from ledger.domain.errors import InvalidInputError, LedgerError, NotYetSignedError
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


def _refused(error: LedgerError):
    return _json_error(400 if isinstance(error, InvalidInputError) else 404, str(error))


@bp.get("/checkpoints/<size>")
def checkpoint_of_size(size: str):
    """The checkpoint signed at tree size ``size``, as it was signed."""
    try:
        return Response(_log().checkpoint(public_log.whole_number(size, "size")), mimetype="text/plain")
    except LedgerError as error:
        return _refused(error)


@bp.get("/checkpoints")
def checkpoint_sizes():
    """The signed tree sizes, largest first, ``limit`` at a time below ``before``."""
    try:
        before = request.args.get("before")
        before = None if before is None else public_log.whole_number(before, "before")
        limit = min(public_log.whole_number(request.args.get("limit"), "limit", 100),
                    public_log.MAX_SIZES)
    except LedgerError as error:
        return _refused(error)
    sizes = _log().checkpoint_sizes(before, max(limit, 1))
    following = (url_for(".checkpoint_sizes", before=sizes[-1], limit=limit)
                 if len(sizes) == limit else None)
    return jsonify(sizes=sizes, next=following)


@bp.get("/inclusion")
def inclusion_proof():
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    try:
        return jsonify(public_log.inclusion(
            _log(), public_log.whole_number(request.args.get("index"), "index"),
            public_log.whole_number(request.args.get("size"), "size")))
    except LedgerError as error:
        return _refused(error)


@bp.get("/entries")
def entries():
    """Logged events from leaf ``start``, with the bytes each leaf hashes."""
    try:
        start = public_log.whole_number(request.args.get("start"), "start", 0)
        limit = public_log.whole_number(request.args.get("limit"), "limit", public_log.MAX_ENTRIES)
    except LedgerError as error:
        return _refused(error)
    found = public_log.entries(current_app.extensions["kapok_market"], _log(), start, limit)
    following = (url_for(".entries", start=found[-1]["index"] + 1, limit=limit)
                 if found else None)
    return jsonify(entries=found, next=following)


@bp.get("/tile/<level>/<path:index>")
def hash_tile(level: str, index: str):
    """A C2SP tlog-tiles hash tile: 32-byte hashes, concatenated."""
    if level == "entries":  # events can exceed an entry bundle's 64 KiB length prefix
        return jsonify(code=404, status="Not Found", message=(
            "entry bundles are not served: events can be longer than 65535 bytes; "
            "/audit/entries serves them as JSON")), 404
    try:
        hashes = public_log.tile(_log(), public_log.whole_number(level, "tile level"), index)
    except LedgerError as error:
        return _refused(error)
    # A tile, full or partial, never changes once the log has signed it.
    return Response(hashes, mimetype="application/octet-stream",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})


@bp.get("/verify_retirement.py")
def small_verifier():
    """The 50-line verifier of a retirement's proof (standard library and cryptography)."""
    return Response(Path(verify_retirement.__file__).read_bytes(), mimetype="text/x-python")
