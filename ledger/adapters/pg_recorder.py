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
the end of that transaction: the insert and the ``COMMIT`` go together, and the turns end
exactly when the events are visible, so the next command in line reads them, with no round
trip of its own to give the turns back. Both queries of that transaction go in PostgreSQL's
simple protocol, with their values written in (``begin_after_turns``): half the client's CPU
of psycopg's pipeline.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from typing import Any, Iterator, Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.pq import TransactionStatus
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
_TIMEOUT = re.compile(r"\d{1,9}(ms|s|min)?")
_TOPIC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # no quote, comma, brace or space


def _check_types(values: Sequence, kind: type) -> None:
    if not all(type(value) is kind for value in values):  # bool is an int: not here
        raise TypeError(f"expected only {kind.__name__} values")


def _array(values: Sequence) -> str:
    """An array literal of integers, UUIDs and NULLs (their text needs no quoting)."""
    return "'{" + ",".join("NULL" if value is None else str(value) for value in values) + "}'"


class KapokPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        # The held transaction's two queries are written with their values in (see
        # begin_after_turns), for uuid ids.
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
        self._insert_function, self._after_turns_function = (
            SQL("{0}.{1}").format(schema, Identifier(name)).as_string(None)
            for name in (function, reader))
        # Four arrays in binary, not eventsourcing's array of a composite type, which psycopg
        # renders as quoted and escaped text (three times the work on every save). A plain
        # string: psycopg caches its conversion, and renders a composed query every time.
        self._insert_call = (f"SELECT id FROM {self._insert_function}"
                             "(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) AS id")
        self._stored_call = SQL(
            "SELECT e.notification_id, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::bigint[]) WITH ORDINALITY AS k(id, version, n) "
            "JOIN {0}.{1} AS e ON e.originator_id = k.id AND e.originator_version = k.version "
            "ORDER BY k.n").format(schema, table).as_string(None)
        self.max_notification_id_statement = self.max_notification_id_statement.as_string(None)
        self._held = threading.local()

    @contextlib.contextmanager
    def holding(self, connection: psycopg.Connection) -> Iterator[None]:
        """While in this block, a save in this thread while ``connection`` is in a
        transaction is made in that transaction, and commits it. A transaction still open at
        the end (nothing was saved, or the command failed) is rolled back."""
        self._held.connection = connection
        try:
            yield
        finally:
            self._held.connection = None
            if connection.info.transaction_status != TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    connection.execute("ROLLBACK")

    def begin_after_turns(self, timeout: str, keys: Sequence[int], ids: Sequence[UUID],
                          after: Sequence[int], most: Sequence[int | None]) -> str:
        """``BEGIN`` and the call of ``<table>_after_turns`` that takes a command's turns and
        reads (``ledger/adapters/batch_reads.py``), as one query of the simple protocol: one round trip
        at about half the client's CPU of psycopg's pipeline of the two statements. Its
        arguments are written in, so only what writes itself safely goes in: integers, UUIDs,
        NULL and a timeout such as ``10s`` (checked here)."""
        if not _TIMEOUT.fullmatch(timeout):
            raise ValueError(f"not a lock timeout: {timeout!r}")
        _check_types(keys, int)
        _check_types(ids, UUID)
        _check_types(after, int)
        _check_types([limit for limit in most if limit is not None], int)
        return (f"BEGIN; SELECT * FROM {self._after_turns_function}('{timeout}', "
                f"{_array(keys)}::bigint[], {_array(ids)}::uuid[], {_array(after)}::bigint[], "
                f"{_array(most)}::bigint[])")

    def _insert_and_commit_query(self, events: tuple) -> str:
        """The insert and the ``COMMIT``, as one query of the simple protocol (see
        ``begin_after_turns``): the states go in as hexadecimal, the topics only if they are
        topics (``module.path:Name``)."""
        ids, versions, topics, states = events
        _check_types(ids, UUID)
        _check_types(versions, int)
        if not all(isinstance(topic, str) and _TOPIC.fullmatch(topic) for topic in topics):
            raise ValueError("an event topic is not module.path:Name")
        quoted = ",".join(f"'{topic}'" for topic in topics)
        hexadecimal = ",".join(f"decode('{bytes(state).hex()}','hex')" for state in states)
        return (f"SELECT id FROM {self._insert_function}({_array(ids)}::uuid[], "
                f"{_array(versions)}::bigint[], ARRAY[{quoted}]::text[], "
                f"ARRAY[{hexadecimal}]::bytea[]) AS id; COMMIT")

    def insert_events(self, stored_events: Sequence, **kwargs: Any) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:
            return super().insert_events(stored_events, **kwargs)
        if not stored_events:  # nothing to save (eventsourcing would still open a transaction)
            return []
        events = ([e.originator_id for e in stored_events],
                  [e.originator_version for e in stored_events],
                  [e.topic for e in stored_events], [e.state for e in stored_events])
        held = getattr(self._held, "connection", None)
        if held is not None and held.info.transaction_status == TransactionStatus.INTRANS:
            return self._insert_and_commit(held, events)
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
        """The insert and the ``COMMIT`` of the held transaction, in one round trip. On any
        failure the transaction is rolled back (its turns end) and the error raised as
        eventsourcing's: a conflict is an ``IntegrityError``, as ``Store.run`` expects.
        Never retried here: the transaction it belonged to is over. But a failed connection
        whose save is found stored (the answer to its ``COMMIT`` was lost) is a save made."""
        try:
            with connection.cursor() as cursor:
                cursor.execute(self._insert_and_commit_query(events))
                return [row["id"] for row in cursor.fetchall()]
        except psycopg.Error as error:
            if connection.info.transaction_status in (TransactionStatus.INTRANS,
                                                      TransactionStatus.INERROR):
                with contextlib.suppress(psycopg.Error):
                    connection.execute("ROLLBACK")
            if isinstance(error, psycopg.IntegrityError):
                raise IntegrityError(str(error)) from error
            if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
                # The connection failed: the COMMIT may have been made, its answer lost. If
                # the events are stored, the save was made (see ``_insert``).
                with contextlib.suppress(InterfaceError, OperationalError):
                    ids = self._stored_already(events)
                    if ids is not None:
                        return ids
                kind = OperationalError if isinstance(error, psycopg.OperationalError) \
                    else InterfaceError
                raise kind(str(error)) from error
            raise
