"""The audit log: a Merkle tree over every stored event, in log order, with signed heads.

A follow-along process reads the notification log from its tracked position, appends each
event's leaf hash, stores the perfect-subtree nodes it completes, and signs a new tree head
for each page; nodes, leaves, the head and the position commit in one transaction, so a
restart resumes exactly where the last page ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from eventsourcing.persistence import IntegrityError, Tracking

from ledger.audit.keys import SigningKey
from ledger.audit.merkle import Frontier, consistency_proof, inclusion_proof
from ledger.audit.verifier import leaf_hash, leaf_input, tree_head_message
from ledger.domain.errors import UnknownTreeHeadError
from ledger.adapters.sql_recorders import tables_recorder

TRACKING_NAME = "kapok_audit_log"
PAGE_SIZE = 1000

TABLES = [
    """CREATE TABLE IF NOT EXISTS kapok_merkle_nodes (
        level INTEGER NOT NULL, idx BIGINT NOT NULL, hash {blob} NOT NULL,
        PRIMARY KEY (level, idx))""",
    """CREATE TABLE IF NOT EXISTS kapok_merkle_leaves (
        leaf_index BIGINT PRIMARY KEY, position BIGINT NOT NULL UNIQUE)""",
    """CREATE TABLE IF NOT EXISTS kapok_tree_heads (
        tree_size BIGINT PRIMARY KEY, root_hash {blob} NOT NULL, timestamp_ms BIGINT NOT NULL,
        signature {blob} NOT NULL, key_id TEXT NOT NULL, last_position BIGINT NOT NULL)""",
]


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes
    key_id: str
    last_position: int

    @property
    def message(self) -> bytes:
        return tree_head_message(self.tree_size, self.timestamp_ms, self.root_hash)

    def as_dict(self, public_pem: bytes | None = None) -> dict:
        when = datetime.fromtimestamp(self.timestamp_ms / 1000, tz=timezone.utc)
        head = {
            "tree_size": self.tree_size, "root_hash": self.root_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "signature": self.signature.hex(), "key_id": self.key_id,
            "last_position": self.last_position,
        }
        if public_pem is not None:
            head["public_key"] = public_pem.decode()
        return head


def notification_leaf(notification) -> bytes:
    """The leaf hash of one stored event, as the standalone verifier computes it."""
    return leaf_hash(leaf_input(str(notification.originator_id), notification.originator_version,
                                notification.topic, bytes(notification.state)))


class AuditLog:
    def __init__(self, app):
        self.app = app
        self.recorder = tables_recorder(app.store, "AuditLogRecorder", TABLES)

    # --- the follow-along process ---------------------------------------------------------
    def follow(self, key: SigningKey, progress=None, page_size: int = PAGE_SIZE) -> TreeHead | None:
        """Logs every stored event not yet in the tree, signing a head per page.

        Returns the latest head (None for an empty store)."""
        while True:
            position = self.recorder.max_tracking_id(TRACKING_NAME) or 0
            page = self.app.recorder.select_notifications(start=position + 1, limit=page_size)
            if not page:
                return self.latest_head()
            size = self.size()
            frontier = Frontier.load(self, size)
            statements = []
            for notification in page:
                statements.append((
                    "INSERT INTO kapok_merkle_leaves VALUES (:index, :position)",
                    {"index": frontier.size, "position": notification.id},
                ))
                for level, index, digest in frontier.append(notification_leaf(notification)):
                    statements.append((
                        "INSERT INTO kapok_merkle_nodes VALUES (:level, :index, :hash)",
                        {"level": level, "index": index, "hash": digest},
                    ))
            head = self._sign(key, frontier, page[-1].id)
            statements.append((
                "INSERT INTO kapok_tree_heads VALUES (:size, :root, :ts, :signature, :key_id, "
                ":last_position)",
                {"size": head.tree_size, "root": head.root_hash, "ts": head.timestamp_ms,
                 "signature": head.signature, "key_id": head.key_id,
                 "last_position": head.last_position},
            ))
            try:
                self.recorder.write(statements, Tracking(TRACKING_NAME, page[-1].id))
            except IntegrityError:
                continue  # another follower logged this page first; go on from its position
            if progress:
                progress(len(page))

    @staticmethod
    def _sign(key: SigningKey, frontier: Frontier, last_position: int) -> TreeHead:
        timestamp_ms = int(time.time() * 1000)
        root = frontier.root()
        signature = key.sign(tree_head_message(frontier.size, timestamp_ms, root))
        return TreeHead(frontier.size, root, timestamp_ms, signature, key.key_id, last_position)

    # --- reading --------------------------------------------------------------------------
    def node(self, level: int, index: int) -> bytes:
        rows = self.recorder.query(
            "SELECT hash FROM kapok_merkle_nodes WHERE level = :level AND idx = :index",
            {"level": level, "index": index},
        )
        if not rows:
            raise KeyError((level, index))
        return bytes(rows[0]["hash"])

    def size(self) -> int:
        rows = self.recorder.query("SELECT MAX(leaf_index) AS last FROM kapok_merkle_leaves", {})
        last = rows[0]["last"]
        return 0 if last is None else last + 1

    def heads(self) -> list[TreeHead]:
        rows = self.recorder.query("SELECT * FROM kapok_tree_heads ORDER BY tree_size", {})
        return [_head(row) for row in rows]

    def latest_head(self) -> TreeHead | None:
        rows = self.recorder.query(
            "SELECT * FROM kapok_tree_heads ORDER BY tree_size DESC LIMIT 1", {}
        )
        return _head(rows[0]) if rows else None

    def head(self, tree_size: int) -> TreeHead:
        rows = self.recorder.query(
            "SELECT * FROM kapok_tree_heads WHERE tree_size = :size", {"size": tree_size}
        )
        if not rows:
            raise UnknownTreeHeadError(f"no signed tree head of size {tree_size}")
        return _head(rows[0])

    def leaf_index(self, position: int) -> int | None:
        rows = self.recorder.query(
            "SELECT leaf_index FROM kapok_merkle_leaves WHERE position = :position",
            {"position": position},
        )
        return rows[0]["leaf_index"] if rows else None

    def logged_leaves(self, page_size: int = PAGE_SIZE):
        """(leaf index, position, leaf hash) of every logged event, in order, streamed."""
        start = 0
        while True:
            # Walk the nodes' primary key (level, idx) in order: ordering by the leaves'
            # column instead made SQLite sort every remaining row for each page.
            rows = self.recorder.query(
                "SELECT n.idx AS leaf_index, l.position, n.hash FROM kapok_merkle_nodes n "
                "JOIN kapok_merkle_leaves l ON l.leaf_index = n.idx "
                "WHERE n.level = 0 AND n.idx >= :start ORDER BY n.idx LIMIT :limit",
                {"start": start, "limit": page_size},
            )
            if not rows:
                return
            for row in rows:
                yield row["leaf_index"], row["position"], bytes(row["hash"])
            start = rows[-1]["leaf_index"] + 1

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        return inclusion_proof(self, leaf_index, tree_size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(self, size1, size2)


def _head(row) -> TreeHead:
    return TreeHead(row["tree_size"], bytes(row["root_hash"]), row["timestamp_ms"],
                    bytes(row["signature"]), row["key_id"], row["last_position"])
