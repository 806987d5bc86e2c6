"""Reading the event log a page at a time for auditors: filters, position cursors, bounded scans.

A page never holds more than one page of the store's records plus the events it shows, and a
filtered page stops after ``scan_limit`` positions, saying where it stopped, so that a filter
matching nothing cannot make one request read a million events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ledger.audit.export import event_fields
from ledger.read.replay import LedgerState, replay

MAX_POSITION = 2**63 - 1  # the largest BIGINT / SQLite rowid
READ_PAGE = 1000
SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class EventFilter:
    """Which events to show; empty fields do not filter. Log order is taken as time order
    (as ``replay`` does): scanning forwards stops at the first event after ``until``."""

    topic: str = ""  # part of the topic: an aggregate type ("Account.") or an event ("Retired")
    originator_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    first_position: int = 1
    last_position: int = MAX_POSITION

    def matches_record(self, notification) -> bool:
        return (self.topic in notification.topic
                and (not self.originator_id
                     or str(notification.originator_id) == self.originator_id))


@dataclass(frozen=True)
class BrowsedEvent:
    """One stored event as an auditor reads it; ``fields`` is None if it does not decode."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    timestamp: datetime | None
    fields: dict | None
    raw_state: bytes

    @property
    def state_text(self) -> str:
        """The event's fields as indented JSON, or the stored bytes as text if undecodable."""
        if self.fields is None:
            return self.raw_state.decode("utf-8", errors="replace")
        return json.dumps(self.fields, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class EventPage:
    """Matching events in log order, with cursors for the pages on either side (None: the
    log or the filter's range ends there). ``scanned`` is the position range read; when
    ``scan_limited``, the page stopped early and the cursors continue from there."""

    events: list[BrowsedEvent]
    older: int | None  # ?before=
    newer: int | None  # ?after=
    scanned: tuple[int, int] | None
    scan_limited: bool


def _browsed(app, notification) -> BrowsedEvent:
    try:
        event = app.mapper.to_domain_event(notification)
    except Exception:  # an altered event may not decode; the auditor must still see it
        timestamp, fields = None, None
    else:
        timestamp, fields = event.timestamp, event_fields(event)
    return BrowsedEvent(notification.id, str(notification.originator_id),
                        notification.originator_version, notification.topic, timestamp,
                        fields, bytes(notification.state))


def _in_time(event: BrowsedEvent, where: EventFilter) -> bool:
    if event.timestamp is None:
        return True  # undecodable: shown under every time filter rather than hidden
    return ((where.since is None or event.timestamp >= where.since)
            and (where.until is None or event.timestamp <= where.until))


def events_after(app, after: int, where: EventFilter, limit: int,
                 scan_limit: int = SCAN_LIMIT) -> EventPage:
    """Up to ``limit`` matching events after position ``after``, oldest first."""
    last = min(where.last_position, app.recorder.max_notification_id() or 0)
    start = max(after + 1, where.first_position)
    shown: list[BrowsedEvent] = []
    read_to = start - 1  # the last position read
    ended = read_to >= last
    while not ended and len(shown) < limit and read_to - start + 1 < scan_limit:
        wanted = min(READ_PAGE, scan_limit - (read_to - start + 1))
        records = app.recorder.select_notifications(start=read_to + 1, limit=wanted, stop=last)
        past_until = False
        for record in records:
            read_to = record.id
            if not where.matches_record(record):
                continue
            event = _browsed(app, record)
            if where.until is not None and event.timestamp is not None \
                    and event.timestamp > where.until:
                past_until = True
                break
            if _in_time(event, where):
                shown.append(event)
                if len(shown) == limit:
                    break
        read_all = not records or read_to == records[-1].id
        ended = past_until or read_to >= last or (read_all and len(records) < wanted)
    first_shown = shown[0].position if shown else min(start, last + 1)
    return EventPage(shown, first_shown if first_shown > where.first_position else None,
                     None if ended else read_to,
                     (start, read_to) if read_to >= start else None,
                     not ended and len(shown) < limit)


def events_before(app, before: int, where: EventFilter, limit: int,
                  scan_limit: int = SCAN_LIMIT) -> EventPage:
    """Up to ``limit`` matching events before position ``before``, oldest first: the page
    that precedes the one starting at ``before``."""
    newest = app.recorder.max_notification_id() or 0
    top = min(before - 1, where.last_position, newest)
    shown: list[BrowsedEvent] = []  # newest first while reading backwards
    low = top + 1  # the lowest position read
    ended = top < where.first_position
    while not ended and len(shown) < limit and top - low + 1 < scan_limit:
        window = max(where.first_position, low - READ_PAGE, top + 1 - scan_limit)
        records = app.recorder.select_notifications(start=window, limit=low - window,
                                                    stop=low - 1)
        low = window
        for record in reversed(records):
            if not where.matches_record(record):
                continue
            event = _browsed(app, record)
            if where.since is not None and event.timestamp is not None \
                    and event.timestamp < where.since:
                ended = True
                break
            if _in_time(event, where):
                shown.append(event)
                if len(shown) == limit:
                    low = record.id
                    break
        ended = ended or low <= where.first_position
    shown.reverse()
    last_shown = shown[-1].position if shown else top
    return EventPage(shown, None if ended else low,
                     last_shown if last_shown < min(where.last_position, newest) else None,
                     (low, top) if top >= low else None, not ended and len(shown) < limit)


@dataclass(frozen=True)
class ReplayAt:
    """The registry replayed up to a moment; ``cut_short`` when the replay stopped at
    ``max_events`` before reaching it (the page says so)."""

    state: LedgerState
    stored: int
    cut_short: bool

    @property
    def violations(self):
        return self.state.violations

    @property
    def open_moves(self):
        return self.state.unfinished()


def replay_at(app, position: int | None = None, moment: datetime | None = None,
              max_events: int = 100_000) -> ReplayAt:
    """Replays up to ``position`` and/or ``moment`` (default: the latest event), reading at
    most ``max_events`` positions."""
    stored = app.recorder.max_notification_id() or 0
    target = stored if position is None else min(position, stored)
    stop = min(target, max_events)
    state = replay(app, until_position=stop, until=moment)
    cut_short = stop < target
    if cut_short and moment is not None:
        after = app.recorder.select_notifications(start=stop + 1, limit=1)
        cut_short = bool(after) and app.mapper.to_domain_event(after[0]).timestamp <= moment
    return ReplayAt(state, stored, cut_short)
