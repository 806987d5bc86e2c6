"""What an intruder with write access to the database does, for the audit tests."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.read.replay import stored_notifications


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
