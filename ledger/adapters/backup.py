"""Backups of an event store: every stored event, byte for byte, in log order.

A backup is JSON lines: a header, one line per stored event (originator id, version, topic
and the stored state in base64, exactly as recorded), and a trailer with the count and the
Merkle root of the events (the audit log's root, RFC 6962). Restoring into an empty store of
either kind (SQLite or PostgreSQL) gives the same events in the same order, so the audit
log rebuilt there has the same root: the proof that nothing changed on the way.

Restore reads the whole file and checks its count and root before it writes anything, so a
truncated or altered backup is refused with nothing written. It then inserts in pages of
``PAGE`` events, each page one transaction.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import IO, Callable, Iterator
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.audit.log import notification_leaf
from ledger.audit.merkle import Frontier
from ledger.domain.errors import InvalidInputError, LedgerError
from ledger.read.replay import stored_notifications

FORMAT = "kapok-backup"
VERSION = 1
PAGE = 1000


class BackupError(LedgerError, InvalidInputError):
    """A backup that cannot be made or restored; nothing was written."""


def write_backup(stores: dict[str, object], output: IO[str],
                 progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Writes every event of each named store (e.g. {"ledger": app, "identity": app}).
    Returns per store its event count and Merkle root (hex)."""
    output.write(json.dumps({"format": FORMAT, "version": VERSION, "stores": list(stores),
                             "created_at": datetime.now(timezone.utc).isoformat()}) + "\n")
    summary = {}
    for name, app in stores.items():
        frontier = Frontier()
        for notification in stored_notifications(app, page_size=PAGE):
            state = bytes(notification.state)
            line = {"store": name, "position": notification.id,
                    "originator_id": str(notification.originator_id),
                    "originator_version": notification.originator_version,
                    "topic": notification.topic, "state": base64.b64encode(state).decode()}
            output.write(json.dumps(line, separators=(",", ":")) + "\n")
            frontier.append(notification_leaf(notification))
            if progress:
                progress(1)
        summary[name] = {"events": frontier.size, "root": frontier.root().hex()}
    output.write(json.dumps({"end": True, "stores": summary}) + "\n")
    return summary


def _read(lines: Iterator[str]) -> Iterator[dict]:
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise BackupError(f"line {number} of the backup is not JSON") from None
        if not isinstance(record, dict):
            raise BackupError(f"line {number} of the backup is not a JSON object")
        yield record


def check_backup(lines: Iterator[str]) -> dict[str, dict]:
    """Reads a whole backup and checks it: header, every event line, and each store's count
    and root against the trailer. Returns the trailer's summary; raises BackupError."""
    records = _read(lines)
    header = next(records, None)
    if not header or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise BackupError(f"not a {FORMAT} file of version {VERSION}")
    frontiers = {name: Frontier() for name in header.get("stores", [])}
    trailer = None
    for record in records:
        if trailer is not None:
            raise BackupError("lines after the end of the backup")
        if record.get("end"):
            trailer = record
            continue
        frontier = frontiers.get(record.get("store"))
        if frontier is None:
            raise BackupError(f"an event of unknown store {record.get('store')!r}")
        frontier.append(notification_leaf(_stored_event(record)))
    if trailer is None:
        raise BackupError("the backup is truncated: it has no end line")
    for name, frontier in frontiers.items():
        expected = (trailer.get("stores") or {}).get(name) or {}
        if expected.get("events") != frontier.size or expected.get("root") != frontier.root().hex():
            raise BackupError(
                f"store {name}: the backup holds {frontier.size} events with root "
                f"{frontier.root().hex()}, but its end line says {expected.get('events')} "
                f"with root {expected.get('root')}: it was altered or damaged")
    return trailer["stores"]


def _stored_event(record: dict) -> StoredEvent:
    try:
        return StoredEvent(originator_id=UUID(record["originator_id"]),
                           originator_version=int(record["originator_version"]),
                           topic=str(record["topic"]),
                           state=base64.b64decode(record["state"], validate=True))
    except (KeyError, ValueError, TypeError) as error:
        raise BackupError(f"a malformed event line in the backup ({error})") from None


def restore_backup(stores: dict[str, object], open_lines: Callable[[], Iterator[str]],
                   progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Checks the backup (``open_lines`` gives its lines, and is called twice), refuses
    unless every target store is empty, then inserts every event in order."""
    summary = check_backup(open_lines())
    for name, app in stores.items():
        if name not in summary:
            raise BackupError(f"the backup has no {name} store")
        if app.recorder.max_notification_id():
            raise BackupError(f"the {name} store is not empty: restore only into a new store")
    pages: dict[str, list[StoredEvent]] = {name: [] for name in stores}

    def flush(name: str) -> None:
        if pages[name]:
            stores[name].recorder.insert_events(pages[name])
            if progress:
                progress(len(pages[name]))
            pages[name] = []

    for record in _read(open_lines()):
        name = record.get("store")
        if "originator_id" not in record or name not in stores:
            continue
        pages[name].append(_stored_event(record))
        if len(pages[name]) >= PAGE:
            flush(name)
    for name in stores:
        flush(name)
    return {name: summary[name] for name in stores}
