"""What the audit log answers anyone, within its latest signed checkpoint: old checkpoints,
inclusion proofs at any size, entries with the bytes their leaves hash, and C2SP tlog-tiles
hash tiles (c2sp.org/tlog-tiles), read from the stored perfect-subtree nodes.

Nothing past the latest checkpoint is served: what is not signed can still change.
"""

from __future__ import annotations

import base64
import re

from ledger.audit.log import AuditLog
from ledger.audit.verifier import leaf_input
from ledger.domain.errors import InvalidInputError, LedgerError, NotFoundError

MAX_ENTRIES = 100  # events can be large: a page stays a few megabytes at most
MAX_SIZES = 1000
TILE_HEIGHT = 8  # 2**8 = 256 hashes in a full tile, as C2SP tlog-tiles fixes
TILE_WIDTH = 1 << TILE_HEIGHT
# N as 3-digit groups, all but the last prefixed with x; then .p/W for a partial tile.
_TILE_INDEX = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


class LogRequestError(LedgerError, InvalidInputError):
    """A request for part of the log that cannot name one: a bad number or tile path."""


class NotInSignedLogError(LedgerError, NotFoundError):
    """A well-formed request for what the latest checkpoint does not cover."""


def whole_number(value: str | None, name: str, default: int | None = None) -> int:
    """A non-negative decimal query value; raises LogRequestError."""
    if value is None and default is not None:
        return default
    if value is None:
        raise LogRequestError(f"{name} is required")
    # 18 digits at most: the database's integers are 64-bit.
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise LogRequestError(f"{name} must be a whole number from 0 (at most 18 digits), "
                              f"not {value[:40]!r}")
    return int(value)


def signed_size(log: AuditLog) -> int:
    head = log.latest_head()
    return 0 if head is None else head.tree_size


def inclusion(log: AuditLog, index: int, size: int) -> dict:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves, hashes
    in base64, leaf up. Raises NotInSignedLogError past the latest checkpoint."""
    latest = signed_size(log)
    if not 0 < size <= latest:
        raise NotInSignedLogError(
            f"size {size} is not a tree the log has signed: sizes 1 to {latest} are")
    if index >= size:
        raise NotInSignedLogError(f"there is no leaf {index} in the tree of {size} leaves")
    return {"index": index, "size": size, "leaf_hash": _b64(log.node(0, index)),
            "proof": [_b64(node) for node in log.inclusion_proof(index, size)]}


def entries(app, log: AuditLog, start: int, limit: int) -> list[dict]:
    """Logged events from leaf ``start``, at most ``limit`` (bounded), within the latest
    checkpoint: each with its position and the exact bytes its leaf hashes."""
    limit = min(max(limit, 1), MAX_ENTRIES)
    end = min(start + limit, signed_size(log))
    if start >= end:
        return []
    leaves = log.leaves(start, end)
    if not leaves:
        return []
    positions = [position for _, position, _ in leaves]
    # Every event stored in the span, logged or not (one inserted by hand among them).
    notifications = {n.id: n for n in app.recorder.select_notifications(
        start=positions[0], limit=positions[-1] - positions[0] + 1, stop=positions[-1])}
    found = []
    for index, position, logged in leaves:
        notification = notifications.get(position)
        data = None if notification is None else leaf_input(
            str(notification.originator_id), notification.originator_version,
            notification.topic, bytes(notification.state))
        found.append({"index": index, "position": position, "leaf_hash": _b64(logged),
                      # an event deleted from the store has no bytes left to serve
                      "leaf_input": None if data is None else _b64(data)})
    return found


def tile(log: AuditLog, level: int, index_path: str) -> bytes:
    """The hashes of tile ``<level>/<index_path>``: node level 8 * level, nodes
    [256 N, 256 N + W). Raises LogRequestError for a path that is not a tile's,
    NotInSignedLogError for a tile the latest checkpoint does not complete."""
    matched = _TILE_INDEX.fullmatch(index_path)
    if not matched or not 0 <= level <= 63 or matched[1].startswith("x000"):
        raise LogRequestError(f"tile/{level}/{index_path} is not a C2SP tlog-tiles path")
    number = int(matched[1].replace("x", "").replace("/", "") + matched[2])
    width = TILE_WIDTH if matched[3] is None else int(matched[3])
    if matched[3] is not None and width >= TILE_WIDTH:
        raise LogRequestError(f"a partial tile has 1 to {TILE_WIDTH - 1} hashes, not {width}")
    node_level = TILE_HEIGHT * level
    first = number * TILE_WIDTH
    if first + width > signed_size(log) >> node_level:
        raise NotInSignedLogError(f"tile/{level}/{index_path} is not complete in the latest "
                                  "checkpoint")
    hashes = log.nodes(node_level, first, first + width)
    if len(hashes) != width:
        raise NotInSignedLogError(f"tile/{level}/{index_path}: the stored tree lacks nodes")
    return b"".join(hashes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
