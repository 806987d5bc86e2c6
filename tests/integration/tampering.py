"""What an intruder with write access to the database does, for the audit tests."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.audit.log import TRACKING_NAME, AuditLog, notification_leaf
from ledger.audit.merkle import Frontier
from ledger.read.replay import stored_notifications
from market.application import Marketplace


class Store:
    """Direct SQL on the event table, as an intruder with database access would write it."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.sqlite = "sqlite" in type(ledger.factory).__module__
        self.table = "stored_events" if self.sqlite else "kapok_events"
        self.id_column = "rowid" if self.sqlite else "notification_id"

    def execute(self, sql: str, *params) -> None:
        if not self.sqlite:
            sql = sql.replace("?", "%s")
        with self.ledger.factory.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql.format(t=self.table, id=self.id_column), params)

    def state(self, position: int) -> bytes:
        return bytes(self.ledger.recorder.select_notifications(start=position, limit=1)[0].state)

    def set_state(self, position: int, state: bytes) -> None:
        self.execute("UPDATE {t} SET state = ? WHERE {id} = ?", state, position)

    def delete(self, position: int) -> None:
        self.execute("DELETE FROM {t} WHERE {id} = ?", position)

    def swap(self, a: int, b: int) -> None:
        self.execute("UPDATE {t} SET {id} = -1 WHERE {id} = ?", a)
        self.execute("UPDATE {t} SET {id} = ? WHERE {id} = ?", a, b)
        self.execute("UPDATE {t} SET {id} = ? WHERE {id} = -1", b)

    def append_copy_as_next_version(self, position: int) -> int:
        """Stores the event at ``position`` again, as its aggregate's next version."""
        record = self.ledger.recorder.select_notifications(start=position, limit=1)[0]
        versions = [n.originator_version for n in stored_notifications(self.ledger)
                    if n.originator_id == record.originator_id]
        self.execute("INSERT INTO {t} (originator_id, originator_version, topic, state) "
                     "VALUES (?, ?, ?, ?)",
                     str(record.originator_id) if self.sqlite else record.originator_id,
                     max(versions) + 1, record.topic, bytes(record.state))
        return self.ledger.recorder.max_notification_id()


def position_of(ledger: Ledger, topic_suffix: str, nth: int = 0) -> int:
    found = [n.id for n in stored_notifications(ledger) if n.topic.endswith(topic_suffix)]
    return found[nth]


class Intruder:
    """Direct SQL on the event store and the audit tables, and the host's files."""

    def __init__(self, url: str, tmp_path):
        self.app = Marketplace(database=url)
        self.store = Store(self.app)
        self.store.table = self.app.recorder.events_table_name  # the market's own table
        self.log = AuditLog(self.app)
        self.published = tmp_path / "published-checkpoints.log"

    def alter(self, position: int) -> None:
        state = self.store.state(position)
        digit = next(i for i, byte in enumerate(state) if chr(byte).isdigit())
        changed = b"8" if state[digit] == ord("9") else b"9"
        self.store.set_state(position, state[:digit] + changed + state[digit + 1:])

    def sql(self, *statements: tuple[str, dict]) -> None:
        with self.log.recorder.datastore.transaction(commit=True) as cursor:
            for sql, params in statements:
                cursor.execute(self.log.recorder.adapt(sql), params)

    def clear_audit_tables(self) -> None:
        self.sql(*[(f"DELETE FROM {table}", {}) for table in (
            "kapok_merkle_nodes", "kapok_merkle_leaves", "kapok_tree_heads",
            "kapok_checkpoints")],
            (f"DELETE FROM {self.log.recorder.tracking_table} WHERE application_name = :name",
             {"name": TRACKING_NAME}))

    def rewrite_tree_and_delete_heads(self) -> None:
        """Every leaf and node made again from the events now stored; no head left."""
        frontier, statements = Frontier(), []
        for notification in stored_notifications(self.app):
            statements.append(("INSERT INTO kapok_merkle_leaves VALUES (:index, :position)",
                               {"index": frontier.size, "position": notification.id}))
            statements += [("INSERT INTO kapok_merkle_nodes VALUES (:level, :index, :hash)",
                            {"level": level, "index": index, "hash": digest})
                           for level, index, digest in frontier.append(
                               notification_leaf(notification))]
        self.sql(*[(f"DELETE FROM {table}", {}) for table in (
            "kapok_merkle_nodes", "kapok_merkle_leaves", "kapok_tree_heads",
            "kapok_checkpoints")], *statements)

    def root_now(self, size: int) -> bytes:
        frontier = Frontier()
        for notification in stored_notifications(self.app, until_position=size):
            frontier.append(notification_leaf(notification))
        return frontier.root()

    def close(self) -> None:
        self.app.close()
