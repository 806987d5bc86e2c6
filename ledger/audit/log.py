"""The audit log: a Merkle tree over every stored event, in log order, with signed heads.

A follow-along process reads the notification log from its tracked position, appends each
event's leaf hash, stores the perfect-subtree nodes it completes, and signs a new tree head
and checkpoint for each page; nodes, leaves, the head, the checkpoint and the position commit
in one transaction, so a restart resumes exactly where the last page ended.

A checkpoint, once signed, is never contradicted: it is appended to the checkpoint file
outside the database before it is stored, and the follower refuses to sign a page whose tree
gives another root for a size already published (in the file or the database), or to sign a
smaller tree than the largest published. A log rebuilt from its events (a restore without
the audit tables) signs again only once it has reached, with the same roots, the size last
published.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Iterator
from datetime import datetime, timezone

from eventsourcing.persistence import IntegrityError, Tracking

from ledger.audit.checkpoint import EquivocationError, sign_checkpoint
from ledger.audit.keys import SigningKey
from ledger.audit.merkle import Frontier, consistency_proof, inclusion_proof, root
from ledger.audit.published import CheckpointFile
from ledger.audit.verifier import leaf_hash, leaf_input, tree_head_message
from ledger.domain.errors import UnknownTreeHeadError
from ledger.adapters.sql_recorders import tables_recorder
from ledger.settings import KAPOK_LOG_ORIGIN

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
    # The signed note of each checkpoint, byte for byte (ledger/audit/checkpoint.py).
    """CREATE TABLE IF NOT EXISTS kapok_checkpoints (
        tree_size BIGINT PRIMARY KEY, note {blob} NOT NULL)""",
]


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes
    key_id: str
    last_position: int
    checkpoint: bytes | None = None  # the same tree head as a signed note

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
        if self.checkpoint is not None:
            head["checkpoint"] = self.checkpoint.decode()
        if public_pem is not None:
            head["public_key"] = public_pem.decode()
        return head


def notification_leaf(notification) -> bytes:
    """The leaf hash of one stored event, as the standalone verifier computes it."""
    return leaf_hash(leaf_input(str(notification.originator_id), notification.originator_version,
                                notification.topic, bytes(notification.state)))


class AuditLog:
    def __init__(self, app, origin: str | None = None,
                 checkpoint_file: CheckpointFile | None = None):
        self.app = app
        self.recorder = tables_recorder(app.store, "AuditLogRecorder", TABLES)
        self.origin = origin or KAPOK_LOG_ORIGIN.read()
        self.checkpoint_file = checkpoint_file or CheckpointFile()

    # --- the follow-along process ---------------------------------------------------------
    def follow(self, key: SigningKey, progress=None, page_size: int = PAGE_SIZE) -> TreeHead | None:
        """Logs every stored event not yet in the tree, signing a head and checkpoint per page.

        Returns the latest head (None for an empty store). Raises EquivocationError, having
        signed nothing, where the events now stored contradict a published checkpoint."""
        published = self.checkpoint_file.roots(key.public_pem)
        self._check_stored_tree(published)
        self._sign_missing_checkpoint(key, published)
        while True:
            position = self.recorder.max_tracking_id(TRACKING_NAME) or 0
            page = self.app.recorder.select_notifications(start=position + 1, limit=page_size)
            if not page:
                self._refuse_rollback(published)
                return self.latest_head()
            size = self.size()
            frontier = Frontier.load(self, size)
            pending = PendingNodes(self)
            statements = []
            for notification in page:
                statements.append((
                    "INSERT INTO kapok_merkle_leaves VALUES (:index, :position)",
                    {"index": frontier.size, "position": notification.id},
                ))
                for level, index, digest in frontier.append(notification_leaf(notification)):
                    pending.put(level, index, digest)
                    statements.append((
                        "INSERT INTO kapok_merkle_nodes VALUES (:level, :index, :hash)",
                        {"level": level, "index": index, "hash": digest},
                    ))
            stored = self._stored_roots(size, frontier.size)
            signed = {**published, **stored}
            for tree_size in sorted(s for s in signed if size < s <= frontier.size):
                _refuse_another_root(tree_size, signed[tree_size], root(pending, tree_size))
            if frontier.size >= max(published, default=0) and frontier.size not in stored:
                statements += self._signed(key, frontier, page[-1].id)
            try:
                self.recorder.write(statements, Tracking(TRACKING_NAME, page[-1].id))
            except IntegrityError:
                continue  # another follower logged this page first; go on from its position
            if progress:
                progress(len(page))

    def _signed(self, key: SigningKey, frontier: Frontier, last_position: int) -> list:
        """The statements storing a new head and checkpoint, the latter published first."""
        head = self._sign(key, frontier, last_position)
        note = self._publish(key, head)
        return [
            ("INSERT INTO kapok_tree_heads VALUES (:size, :root, :ts, :signature, :key_id, "
             ":last_position)",
             {"size": head.tree_size, "root": head.root_hash, "ts": head.timestamp_ms,
              "signature": head.signature, "key_id": head.key_id,
              "last_position": head.last_position}),
            ("INSERT INTO kapok_checkpoints VALUES (:size, :note)",
             {"size": head.tree_size, "note": note}),
        ]

    def _check_stored_tree(self, published: dict[int, tuple[bytes, str]]) -> None:
        """The stored tree must still give the largest published checkpoint it covers."""
        size = self.size()
        covered = [tree_size for tree_size in published if tree_size <= size]
        if covered:
            tree_size = max(covered)
            _refuse_another_root(tree_size, published[tree_size], root(self, tree_size))

    def _refuse_rollback(self, published: dict[int, tuple[bytes, str]]) -> None:
        size, largest = self.size(), max(published, default=0)
        if size < largest:
            raise EquivocationError(
                f"refusing to sign: a checkpoint of tree size {largest} (root "
                f"{_b64(published[largest][0])}) was published in {published[largest][1]}, "
                f"but the store now holds only {size} events: the log was rolled back")

    def _stored_roots(self, after: int, up_to: int) -> dict[int, tuple[bytes, str]]:
        """Roots the database holds signed for tree sizes in (after, up_to]."""
        rows = self.recorder.query(
            "SELECT tree_size, root_hash FROM kapok_tree_heads "
            "WHERE tree_size > :after AND tree_size <= :up_to", {"after": after, "up_to": up_to})
        return {row["tree_size"]: (bytes(row["root_hash"]), "the database") for row in rows}

    def _publish(self, key: SigningKey, head: TreeHead) -> bytes:
        """The head's checkpoint, appended to the checkpoint file unless already there
        (after a commit that failed: Ed25519 signs the same note again)."""
        note = sign_checkpoint(key, self.origin, head.tree_size, head.root_hash)
        if note not in self.checkpoint_file.notes():
            self.checkpoint_file.append(note)  # published before stored, never the other way
        return note

    def _sign_missing_checkpoint(self, key: SigningKey,
                                 published: dict[int, tuple[bytes, str]]) -> None:
        """Signs the checkpoint of the latest head if it has none (heads signed before
        checkpoints existed), unless that would contradict or roll back a published one."""
        head = self.latest_head()
        if head is None or head.checkpoint is not None:
            return
        if head.tree_size in published:
            _refuse_another_root(head.tree_size, published[head.tree_size], head.root_hash)
        if head.tree_size < max(published, default=0):
            self._refuse_rollback(published)
        note = self._publish(key, head)
        try:
            with self.recorder.datastore.transaction(commit=True) as cursor:
                cursor.execute(self.recorder.adapt(
                    "INSERT INTO kapok_checkpoints VALUES (:size, :note)"),
                    {"size": head.tree_size, "note": note})
        except IntegrityError:
            pass  # another follower signed it first

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

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        """The stored nodes (level, start) to (level, end - 1), in order: fewer where some
        are not stored."""
        rows = self.recorder.query(
            "SELECT hash FROM kapok_merkle_nodes WHERE level = :level AND idx >= :start "
            "AND idx < :end ORDER BY idx", {"level": level, "start": start, "end": end})
        return [bytes(row["hash"]) for row in rows]

    def leaves(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        """(leaf index, position, leaf hash) of leaves [start, end), in order."""
        rows = self.recorder.query(
            f"{_LEAVES} WHERE n.level = 0 AND n.idx >= :start AND n.idx < :end ORDER BY n.idx",
            {"start": start, "end": end})
        return [(row["leaf_index"], row["position"], bytes(row["hash"])) for row in rows]

    def size(self) -> int:
        rows = self.recorder.query("SELECT MAX(leaf_index) AS last FROM kapok_merkle_leaves", {})
        last = rows[0]["last"]
        return 0 if last is None else last + 1

    def heads(self) -> list[TreeHead]:
        rows = self.recorder.query(f"{_HEADS} ORDER BY h.tree_size", {})
        return [_head(row) for row in rows]

    def latest_head(self) -> TreeHead | None:
        rows = self.recorder.query(f"{_HEADS} ORDER BY h.tree_size DESC LIMIT 1", {})
        return _head(rows[0]) if rows else None

    def latest_checkpoint(self) -> bytes | None:
        """The signed note of the largest checkpoint, byte for byte."""
        rows = self.recorder.query(
            "SELECT note FROM kapok_checkpoints ORDER BY tree_size DESC LIMIT 1", {})
        return bytes(rows[0]["note"]) if rows else None

    def checkpoint(self, tree_size: int) -> bytes:
        """The signed note of the checkpoint of ``tree_size``; raises UnknownTreeHeadError."""
        rows = self.recorder.query("SELECT note FROM kapok_checkpoints WHERE tree_size = :size",
                                   {"size": tree_size})
        if not rows:
            raise UnknownTreeHeadError(f"no checkpoint of size {tree_size}")
        return bytes(rows[0]["note"])

    def checkpoint_notes(self) -> list[bytes]:
        """Every stored checkpoint's signed note, smallest tree first."""
        rows = self.recorder.query("SELECT note FROM kapok_checkpoints ORDER BY tree_size", {})
        return [bytes(row["note"]) for row in rows]

    def checkpoints_between(self, after: int, up_to: int,
                            page_size: int = PAGE_SIZE) -> Iterator[tuple[int, bytes]]:
        """(size, signed note) of every stored checkpoint of more than ``after`` and at most
        ``up_to`` leaves, smallest first, streamed page by page."""
        while True:
            rows = self.recorder.query(
                "SELECT tree_size, note FROM kapok_checkpoints WHERE tree_size > :after "
                "AND tree_size <= :up_to ORDER BY tree_size LIMIT :limit",
                {"after": after, "up_to": up_to, "limit": page_size})
            if not rows:
                return
            yield from ((row["tree_size"], bytes(row["note"])) for row in rows)
            after = rows[-1]["tree_size"]

    def checkpoint_sizes(self, below: int | None, limit: int) -> list[int]:
        """The sizes of at most ``limit`` stored checkpoints, largest first, each smaller
        than ``below`` if given."""
        rows = self.recorder.query(
            "SELECT tree_size FROM kapok_checkpoints WHERE tree_size < :below "
            "ORDER BY tree_size DESC LIMIT :limit",
            {"below": 2**63 - 1 if below is None else below, "limit": limit})
        return [row["tree_size"] for row in rows]

    def head(self, tree_size: int) -> TreeHead:
        rows = self.recorder.query(f"{_HEADS} WHERE h.tree_size = :size", {"size": tree_size})
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
                f"{_LEAVES} WHERE n.level = 0 AND n.idx >= :start ORDER BY n.idx LIMIT :limit",
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


class PendingNodes:
    """Nodes of a page not yet committed, read before the stored ones."""

    def __init__(self, stored) -> None:
        self.stored = stored
        self._nodes: dict[tuple[int, int], bytes] = {}

    def put(self, level: int, index: int, hash_: bytes) -> None:
        self._nodes[level, index] = hash_

    def node(self, level: int, index: int) -> bytes:
        found = self._nodes.get((level, index))
        return found if found is not None else self.stored.node(level, index)


def _refuse_another_root(tree_size: int, published: tuple[bytes, str], now: bytes) -> None:
    if now != published[0]:
        raise EquivocationError(
            f"refusing to sign: tree size {tree_size} was published with root "
            f"{_b64(published[0])} (in {published[1]}), but the events now stored give root "
            f"{_b64(now)} for that size: the logged events were changed")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


_LEAVES = ("SELECT n.idx AS leaf_index, l.position, n.hash FROM kapok_merkle_nodes n "
           "JOIN kapok_merkle_leaves l ON l.leaf_index = n.idx")
_HEADS = ("SELECT h.*, c.note FROM kapok_tree_heads h "
          "LEFT JOIN kapok_checkpoints c ON c.tree_size = h.tree_size")


def _head(row) -> TreeHead:
    note = row["note"]
    return TreeHead(row["tree_size"], bytes(row["root_hash"]), row["timestamp_ms"],
                    bytes(row["signature"]), row["key_id"], row["last_position"],
                    None if note is None else bytes(note))
