"""Every stored event as plain rows, for auditors' own tools (JSON Lines or CSV).

A JSON Lines export proves itself: each event's line carries the bytes its leaf hashes, and
the file ends with the signed checkpoints over those leaves and the consistency proofs
between them, so docs/AUDIT.md suffices to check it without Kapok."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Iterator
from uuid import UUID

from ledger.audit.log import AuditLog
from ledger.audit.verifier import leaf_hash, leaf_input, read_state
from ledger.read.replay import stored_notifications
from ledger.domain.serials import SerialBlock

CSV_COLUMNS = ["position", "leaf_index", "leaf_hash", "originator_id", "originator_version",
               "topic", "event", "timestamp", "fields", "leaf_input"]
# Spreadsheets run cells that start with these as formulas (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain(value):
    """JSON-ready form of the values events hold."""
    if isinstance(value, SerialBlock):
        return value.serial
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if is_dataclass(value):
        return {key: plain(item) for key, item in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def event_fields(event) -> dict:
    skip = {"originator_id", "originator_version", "timestamp"}
    return {key: plain(value) for key, value in vars(event).items() if key not in skip}


def export_rows(app, until_position: int | None = None) -> Iterator[dict]:
    """Every stored event as a row: its leaf index in the audit log (None while not yet
    logged), the exact bytes its leaf hashes (``leaf_input``, base64) and the fields read from
    those bytes (``read_state``). One that no longer reads (an altered store) is exported with
    its stored bytes as text under ``fields.undecodable_state`` rather than ending the export
    there."""
    leaf_indexes = _LeafIndexes(AuditLog(app).logged_leaves())
    for notification in stored_notifications(app, until_position):
        state = bytes(notification.state)
        data = leaf_input(str(notification.originator_id), notification.originator_version,
                          notification.topic, state)
        try:
            read = read_state(notification.topic, state)
        except ValueError:
            read = {"event": "", "timestamp": "",
                    "fields": {"undecodable_state": state.decode("utf-8", "replace")}}
        yield {
            "position": notification.id,
            "leaf_index": leaf_indexes.at(notification.id),
            "leaf_input": base64.b64encode(data).decode(),
            "leaf_hash": leaf_hash(data).hex(),
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "topic": notification.topic,
            **read,
        }


class _LeafIndexes:
    """Leaf indexes of ascending positions, read along the logged leaves as they stream."""

    def __init__(self, logged_leaves: Iterator[tuple[int, int, bytes]]):
        self._leaves = logged_leaves
        self._next = next(self._leaves, None)

    def at(self, position: int) -> int | None:
        while self._next is not None and self._next[1] < position:
            self._next = next(self._leaves, None)
        if self._next is not None and self._next[1] == position:
            return self._next[0]
        return None


def checkpoint_rows(log: AuditLog, leaves: int) -> Iterator[dict]:
    """The stored checkpoints of at most ``leaves`` leaves, smallest first, then a
    consistency proof from each to the next; streamed."""
    for _, note in log.checkpoints_between(0, leaves):
        yield {"checkpoint": note.decode()}
    sizes = (size for size, _ in log.checkpoints_between(0, leaves))
    old = next(sizes, None)
    for new in sizes:
        proof = [base64.b64encode(node).decode() for node in log.consistency_proof(old, new)]
        yield {"consistency_proof": {"old_size": old, "new_size": new, "proof": proof}}
        old = new


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_lines(app, fmt: str,
                 until_position: int | None = None) -> Iterator[tuple[int | None, str]]:
    """(position, text) for each event as a JSON line or a CSV row; the CSV header comes
    first, with position None. Streamed: nothing holds more than one row."""
    if fmt != "csv":
        leaves = 0
        for row in export_rows(app, until_position):
            leaves += row["leaf_index"] is not None
            yield row["position"], _json_line(row)
        for row in checkpoint_rows(AuditLog(app), leaves):
            yield None, _json_line(row)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def taken() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield None, taken()
    for row in export_rows(app, until_position):
        row = {**row, "fields": json.dumps(row["fields"], ensure_ascii=False, sort_keys=True)}
        writer.writerow([neutralise("" if row[column] is None else str(row[column]))
                         for column in CSV_COLUMNS])
        yield row["position"], taken()


def _json_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def write_export(app, output: IO[str], fmt: str, progress=None) -> int:
    """Writes every event as JSON Lines (then the checkpoints covering them) or CSV; returns
    the number of events written."""
    count = 0
    for position, text in export_lines(app, fmt):
        output.write(text)
        if position is not None:
            count += 1
            if progress:
                progress(position)
    return count
