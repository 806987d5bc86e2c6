"""Kapok's PostgreSQL event recorder: eventsourcing's, saving in one statement, and saving a
command that holds turns in the transaction that holds them.

eventsourcing's recorder saves in a transaction of its own: ``BEGIN``, ``SET LOCAL
lock_timeout``, ``LOCK TABLE ... IN EXCLUSIVE MODE`` (so that notification ids are committed
in order, and a reader following the log never passes a gap that fills in later), ``NOTIFY``,
the ``INSERT``, then ``COMMIT``: six statements and two round trips. Here the same steps run
in one database function, one statement and one round trip. (eventsourcing's own optional
function leaves out the table lock, and with it the ordering guarantee our projections and
the audit log rely on.)

A command on hot aggregates (``Store._taking_turns``) runs in a transaction that holds its
turns as transaction-scoped advisory locks, taken by a second function, ``<table>_after_turns``,
which then reads what the command reads (``ledger/adapters/batch_reads.py``): one statement, where the
locks and the read were two (a PL/pgSQL function's queries each see what committed before
they started, so the read sees every save that ended the turns it waited for). Its save is
the end of that transaction: the insert and the commit go together, and the turns end
exactly when the events are visible, so the next command in line reads them, with no round
trip of its own to give the turns back. That transaction is the implicit one of PostgreSQL's
extended protocol: both statements go, with their values as parameters, in one psycopg
pipeline that stays open from the read to the save, and the pipeline's ``Sync``, sent with
the insert, commits them. No ``BEGIN`` or ``COMMIT`` statement is sent at all, so a held
command is still two round trips, one statement each.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any, Iterator, Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.adapters.batch_reads import EVENTS_AFTER

_INSERT_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    ids {id_type}[], versions bigint[], topics text[], states bytea[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$
BEGIN
    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;
    NOTIFY {channel};
    RETURN QUERY
    INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(ids, versions, topics, states)
    RETURNING notification_id;
END;
$BODY$
"""

# Takes the turns (in the order given: sorted by the caller, so two commands never wait for
# each other) with a lock timeout for this transaction, then reads as a batch read does.
_AFTER_TURNS_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    timeout text, turns bigint[], ids {id_type}[], after bigint[], most bigint[])
RETURNS TABLE (originator_id {id_type}, originator_version bigint, topic text, state bytea)
LANGUAGE plpgsql VOLATILE AS $BODY$
DECLARE
    turn bigint;
BEGIN
    PERFORM set_config('lock_timeout', timeout, true);
    FOREACH turn IN ARRAY turns LOOP
        PERFORM pg_advisory_xact_lock(turn);
    END LOOP;
    RETURN QUERY {events_after};
END;
$BODY$
"""


_SAVE_ATTEMPTS, _SAVE_WAIT = 10, 0.2  # as eventsourcing's recorder: tries, seconds apart


class KapokPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        # The functions and their calls below are written for uuid ids.
        if datastore.originator_id_type != "uuid":
            raise ValueError("Kapok's recorder needs uuid originator ids")
        function, reader = f"{events_table_name}_insert", f"{events_table_name}_after_turns"
        if len(reader) > 63:  # PostgreSQL would cut the name, and two tables could share it
            raise ValueError(f"events table name too long for its functions: {reader}")
        schema, table = Identifier(datastore.schema), Identifier(events_table_name)
        self.sql_create_statements.append(SQL(_INSERT_FUNCTION).format(
            schema=schema, function=Identifier(function), id_type=SQL("uuid"), table=table,
            channel=Identifier(self.channel_name)))
        self.sql_create_statements.append(SQL(_AFTER_TURNS_FUNCTION).format(
            schema=schema, function=Identifier(reader), id_type=SQL("uuid"),
            events_after=SQL(EVENTS_AFTER).format(
                ids=SQL("ids"), after=SQL("after"), most=SQL("most"),
                table=SQL("{0}.{1}").format(schema, table))))
        # Arrays in binary, not eventsourcing's array of a composite type, which psycopg
        # renders as quoted and escaped text (three times the work on every save). Plain
        # strings: psycopg caches their conversion, and renders a composed query every time.
        self._insert_call = SQL(
            "SELECT id FROM {0}.{1}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) AS id"
        ).format(schema, Identifier(function)).as_string(None)
        self._after_turns_call = SQL(
            "SELECT * FROM {0}.{1}(%s, %b::bigint[], %b::uuid[], %b::bigint[], %b::bigint[])"
        ).format(schema, Identifier(reader)).as_string(None)
        self._stored_call = SQL(
            "SELECT e.notification_id, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::bigint[]) WITH ORDINALITY AS k(id, version, n) "
            "JOIN {0}.{1} AS e ON e.originator_id = k.id AND e.originator_version = k.version "
            "ORDER BY k.n").format(schema, table).as_string(None)
        self.max_notification_id_statement = self.max_notification_id_statement.as_string(None)
        # This thread's held connection, and the pipeline holding its turns once taken.
        self._held = threading.local()

    @contextlib.contextmanager
    def holding(self, connection: psycopg.Connection) -> Iterator[None]:
        """While in this block, ``connection`` may take this thread's turns
        (``take_turns_and_read``), and a save in this thread once they are taken is made in
        their transaction, and commits it. Turns still held at the end (nothing was saved,
        or the command failed) end with it, and nothing is written."""
        self._held.connection, self._held.turns = connection, None
        try:
            yield
        finally:
            turns, self._held.connection, self._held.turns = self._held.turns, None, None
            if turns is not None:  # its Sync ends the transaction, which wrote nothing
                with contextlib.suppress(psycopg.Error):
                    turns.close()

    def take_turns_and_read(self, connection: psycopg.Connection, timeout: str,
                            keys: Sequence[int], ids: Sequence[UUID], after: Sequence[int],
                            most: Sequence[int | None]) -> list:
        """Calls ``<table>_after_turns`` on the held ``connection``: takes the turns ``keys``
        (waiting at most ``timeout``, such as ``10s``) and reads as a batch read does
        (``ledger/adapters/batch_reads.py``); returns its rows. The call opens a psycopg
        pipeline, and so the extended protocol's implicit transaction, which holds the turns
        until the save's ``Sync`` commits it (or the end of ``holding``)."""
        if connection is not getattr(self._held, "connection", None):
            raise RuntimeError("turns are taken only on the connection being held")
        if self._held.turns is not None:
            raise RuntimeError("this command's turns are taken already")
        turns = contextlib.ExitStack()
        turns.enter_context(connection.pipeline())
        self._held.turns = turns
        with connection.cursor() as cursor:
            cursor.execute(self._after_turns_call, [timeout, keys, ids, after, most],
                           prepare=True)
            return cursor.fetchall()  # a flush, not a Sync: the transaction goes on

    def insert_events(self, stored_events: Sequence, **kwargs: Any) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:
            return super().insert_events(stored_events, **kwargs)
        if not stored_events:  # nothing to save (eventsourcing would still open a transaction)
            return []
        events = ([e.originator_id for e in stored_events],
                  [e.originator_version for e in stored_events],
                  [e.topic for e in stored_events], [e.state for e in stored_events])
        if getattr(self._held, "turns", None) is not None:
            return self._insert_and_commit(self._held.connection, events)
        return self._insert(events)

    def _insert(self, events: tuple) -> list[int]:
        """The save, tried again when the connection fails (as eventsourcing's recorder
        does). A connection that failed after the insert was sent leaves it unknown whether
        it committed: before inserting again, the events are looked for, and if they are
        stored exactly as given, the save was made and its ids are returned. Else the insert
        again would be refused as a conflict with the save itself, and ``Store.run`` would
        run the command a second time on top of its own effect (a transfer made twice)."""
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                if attempt:
                    ids = self._stored_already(events)
                    if ids is not None:
                        return ids
                with self.datastore.get_connection() as connection, connection.cursor() as cursor:
                    cursor.execute(self._insert_call, events, prepare=True)
                    return [row["id"] for row in cursor.fetchall()]
            except (InterfaceError, OperationalError):
                if attempt + 1 == _SAVE_ATTEMPTS:
                    raise
                time.sleep(_SAVE_WAIT * (1 + 0.1 * (random.random() - 0.5)))
        raise AssertionError("unreachable")

    def _stored_already(self, events: tuple) -> list[int] | None:
        """The notification ids of ``events`` if every one of them is stored with the same
        topic and state (a save whose answer was lost), else None."""
        ids, versions, topics, states = events
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._stored_call, [ids, versions], prepare=True)
            rows = cursor.fetchall()
        if len(rows) != len(ids) or any(
                row["topic"] != topic or bytes(row["state"]) != bytes(state)
                for row, topic, state in zip(rows, topics, states)):
            return None
        return [row["notification_id"] for row in rows]

    def _insert_and_commit(self, connection: psycopg.Connection, events: tuple) -> list[int]:
        """The insert and the commit of the held transaction, in one round trip: the insert
        goes in the turns' pipeline, and closing the pipeline sends its ``Sync``. On any
        failure the transaction is rolled back (its turns end) and the error raised as
        eventsourcing's: a conflict is an ``IntegrityError``, as ``Store.run`` expects.
        Never retried here: the transaction it belonged to is over. But a failed connection
        whose save is found stored (the answer to its commit was lost) is a save made."""
        turns, self._held.turns = self._held.turns, None
        try:
            with connection.cursor() as cursor:
                try:
                    cursor.execute(self._insert_call, events, prepare=True)
                finally:
                    turns.close()  # the Sync: commits, or rolls back and raises the failure
                return [row["id"] for row in cursor.fetchall()]
        except psycopg.Error as error:
            if isinstance(error, psycopg.IntegrityError):
                raise IntegrityError(str(error)) from error
            if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
                # The connection failed: the commit may have been made, its answer lost. If
                # the events are stored, the save was made (see ``_insert``).
                with contextlib.suppress(InterfaceError, OperationalError):
                    ids = self._stored_already(events)
                    if ids is not None:
                        return ids
                kind = OperationalError if isinstance(error, psycopg.OperationalError) \
                    else InterfaceError
                raise kind(str(error)) from error
            raise
