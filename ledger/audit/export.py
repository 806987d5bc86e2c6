"""Every stored event as plain rows, for auditors' own tools (JSON Lines or CSV)."""

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

from ledger.audit.log import notification_leaf
from ledger.read.replay import stored_notifications
from ledger.domain.serials import SerialBlock

CSV_COLUMNS = ["position", "leaf_hash", "originator_id", "originator_version", "topic",
               "event", "timestamp", "fields"]
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
    """Every stored event as a row; one that no longer decodes (an altered store) is exported
    with its stored bytes as text under ``fields.undecodable_state`` rather than ending the
    export there."""
    for notification in stored_notifications(app, until_position):
        try:
            event = app.mapper.to_domain_event(notification)
        except Exception:
            name, timestamp = "", ""
            fields = {"undecodable_state": bytes(notification.state).decode("utf-8", "replace")}
        else:
            name, timestamp = type(event).__qualname__, event.timestamp.isoformat()
            fields = event_fields(event)
        yield {
            "position": notification.id,
            "leaf_hash": notification_leaf(notification).hex(),
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "topic": notification.topic,
            "event": name,
            "timestamp": timestamp,
            "fields": fields,
        }


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_lines(app, fmt: str,
                 until_position: int | None = None) -> Iterator[tuple[int | None, str]]:
    """(position, text) for each event as a JSON line or a CSV row; the CSV header comes
    first, with position None. Streamed: nothing holds more than one row."""
    if fmt != "csv":
        for row in export_rows(app, until_position):
            yield row["position"], json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
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
        writer.writerow([neutralise(str(row[column])) for column in CSV_COLUMNS])
        yield row["position"], taken()


def write_export(app, output: IO[str], fmt: str, progress=None) -> int:
    """Writes every event as JSON Lines or CSV; returns the number written."""
    count = 0
    for position, text in export_lines(app, fmt):
        output.write(text)
        if position is not None:
            count += 1
            if progress:
                progress(position)
    return count
