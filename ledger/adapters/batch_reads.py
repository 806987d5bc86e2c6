"""Reading the events of many aggregates in one database round trip.

A command loads several aggregates (an order, its listing, two accounts, the proceeds
journal, ...). Through eventsourcing's repository each one is a query of its own, even when
it is in the aggregate cache (the cache is fast-forwarded from the store on every get). On
PostgreSQL a round trip costs more than decoding the events it brings, so the commands that
run on every sale read all they need in one statement. SQLite is in-process: its queries are
cheap, and it reads one aggregate at a time (``Store.load``).
"""

from __future__ import annotations

import contextlib

from typing import Any, Iterable, Mapping
from uuid import UUID

from eventsourcing.persistence import StoredEvent

# One lateral select per aggregate: the events after the version already in memory, or (for an
# aggregate not in memory) its first few events, which say whether it exists (and, for a short
# one, are all of it). {ids}, {after} and {most} are the three arrays, {table} the events
# table: the same query runs here and in Kapok's recorder's ``<table>_after_turns`` function,
# whose result columns are named as the table's (hence the alias ``s``).
EVENTS_AFTER = """
SELECT k.id AS originator_id, e.originator_version, e.topic, e.state
FROM unnest({ids}, {after}, {most}) AS k(id, after, most)
CROSS JOIN LATERAL (
    SELECT s.originator_version, s.topic, s.state FROM {table} AS s
    WHERE s.originator_id = k.id AND s.originator_version > k.after
    ORDER BY s.originator_version LIMIT k.most
) AS e
"""


def _statement(recorder) -> str:
    """The query for ``recorder``'s table, composed once: psycopg renders a composed query
    again on every execution, and caches the conversion of a plain string."""
    try:
        return recorder._kapok_events_after
    except AttributeError:
        from psycopg.sql import SQL, Identifier

        recorder._kapok_events_after = SQL(EVENTS_AFTER).format(
            ids=SQL("%s::uuid[]"), after=SQL("%s::bigint[]"), most=SQL("%s::bigint[]"),
            table=SQL("{0}.{1}").format(Identifier(recorder.datastore.schema),
                                        Identifier(recorder.events_table_name))
        ).as_string(None)
        return recorder._kapok_events_after


def supports_batch_reads(recorder) -> bool:
    return any(cls.__module__ == "eventsourcing.postgres" for cls in type(recorder).__mro__)


def events_after(recorder, after: Mapping[UUID, int], probe: Iterable[UUID],
                 turns: tuple[Any, str, list[int]] | None = None,
                 probe_limit: int = 1, connection=None) -> dict[UUID, list[StoredEvent]]:
    """The stored events of each aggregate in ``after`` with a version above the one given,
    and at most the first ``probe_limit`` events of each aggregate in ``probe``, in one query
    (PostgreSQL).
    Aggregates without such events have an empty list. ``turns``: a connection, a lock
    timeout and the advisory lock keys of a command's turns: the turns are taken on that
    connection before the read, in the same round trip and statement, and held in its
    transaction until the command's save (Kapok's recorder's ``take_turns_and_read``), so the
    read sees what the previous holder of the turns saved. ``connection``: the one a command
    holds its turns on, for the reads after the first: a command never holds two."""
    probe = [aggregate_id for aggregate_id in probe if aggregate_id not in after]
    ids = [*after, *probe]
    found: dict[UUID, list[StoredEvent]] = {aggregate_id: [] for aggregate_id in ids}
    versions = [*after.values(), *(0 for _ in probe)]
    # NULL is no limit: every newer event of a loaded aggregate, the first few of a probed one.
    limits = [*(None for _ in after), *(probe_limit for _ in probe)]
    if turns is not None:
        connection, timeout, keys = turns
        rows = recorder.take_turns_and_read(connection, timeout, keys, ids, versions, limits)
    elif not ids:
        return found
    else:
        with (contextlib.nullcontext(connection) if connection is not None
              else recorder.datastore.get_connection()) as reading, reading.cursor() as cursor:
            cursor.execute(_statement(recorder), [ids, versions, limits], prepare=True)
            rows = cursor.fetchall()
    for row in rows:
        found[row["originator_id"]].append(StoredEvent(
            originator_id=row["originator_id"], originator_version=row["originator_version"],
            topic=row["topic"], state=bytes(row["state"])))
    for events in found.values():
        events.sort(key=lambda event: event.originator_version)
    return found

