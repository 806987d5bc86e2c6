"""Tables of our own beside the event store, written together with a tracked position.

Each is a subclass of eventsourcing's tracking recorder for its database, so that a page of
rows and the position it brings the tables to commit in one transaction. SQL is written once
with ``:name`` placeholders and ``{blob}`` for binary columns, and adapted per dialect.

Tables that are a projection of the event log (the read model) are rebuilt rather than
migrated: a fingerprint of their definitions is kept beside them, and when the code's differs
the tables are dropped, recreated empty and their tracked position reset, so the next catch-up
replays the log from the first event.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.sqlite import SQLiteFactory, SQLiteTrackingRecorder

from ledger.settings import is_postgres

Statement = tuple[str, dict[str, Any]]
T = TypeVar("T")

logger = logging.getLogger(__name__)

VIEW_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS kapok_view_schema (
    tracking_name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"""
_CREATED_NAME = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?(TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


@functools.lru_cache(maxsize=512)  # the projection adapts the same few statements again
def to_pyformat(sql: str) -> str:
    """``:name`` placeholders (SQLite) as ``%(name)s`` (psycopg)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)", r"%(\1)s", sql)


def tables_fingerprint(tables: Sequence[str]) -> str:
    """SHA-256 of the table definitions, blind to layout (re-wrapping a line rebuilds nothing)."""
    return hashlib.sha256("\n".join(" ".join(sql.split()) for sql in tables).encode()).hexdigest()


def drop_statements(tables: Sequence[str]) -> list[str]:
    """DROP statements for every table and index the CREATE statements ``tables`` name."""
    created = [match.groups() for sql in tables if (match := _CREATED_NAME.search(sql))]
    return ([f"DROP INDEX IF EXISTS {name}" for kind, name in created if kind.upper() == "INDEX"]
            + [f"DROP TABLE IF EXISTS {name}" for kind, name in created if kind.upper() == "TABLE"])


class _TablesRecorder:
    """What both dialects' recorders add to eventsourcing's tracking recorder."""

    tables: Sequence[str] = ()
    projection: str | None = None  # the tracking name of a projection, rebuilt on change
    blob_type = "BLOB"
    tracking_table = "tracking"

    def adapt(self, sql: str) -> str:
        return sql

    def table_name(self, name: str) -> str:
        """The table ``name`` of this database, as this dialect's SQL names it."""
        return name

    def create_statements(self) -> list[str]:
        """Ours, beside the tracking table (a projection's own are made by its rebuild)."""
        if self.projection is not None:
            return [VIEW_SCHEMA_TABLE]
        return self._table_statements()

    def _table_statements(self) -> list[str]:
        """``tables`` with this dialect's binary column type in place of ``{blob}``."""
        return [table.format(blob=self.blob_type) for table in self.tables]

    def create_table(self) -> None:
        super().create_table()
        if self.projection is not None:
            self._rebuild_if_changed()

    # Statements that open a transaction of a projection's writes (see the PostgreSQL one).
    projection_settings: Sequence[str] = ()

    def write(self, statements: Iterable[Statement], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for sql, params in statements:
                cursor.execute(self.adapt(sql), params)
            self._insert_tracking(cursor, tracking)

    def write_range(self, name: str, first: int, last: int,
                    statements: Iterable[Statement]) -> None:
        """Runs ``statements``, the effect of the events at positions ``first`` to ``last``,
        in one transaction that moves the tracked position ``name`` to ``last``.

        The position is claimed first, with ``first``: eventsourcing's tracking statement
        moves it only forwards, so if any process has already applied the event at
        ``first`` this raises IntegrityError and nothing is written, and a process applying
        the same events at this moment waits on the claim's row, then finds it moved."""
        with self.datastore.transaction(commit=True) as cursor:
            self._write_range(cursor, name, first, last, statements)

    def _write_range(self, cursor, name: str, first: int, last: int,
                     statements: Iterable[Statement], settle=lambda: None) -> None:
        for setting in self.projection_settings:
            cursor.execute(setting)
        self._insert_tracking(cursor, Tracking(name, first))
        for sql, params in statements:
            cursor.execute(self.adapt(sql), params)
        if last != first:
            settle()
            self._insert_tracking(cursor, Tracking(name, last))

    def query(self, sql: str, params: dict[str, Any]) -> list:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.adapt(sql), params)
            return cursor.fetchall()

    def _stored_fingerprint(self, cursor) -> str | None:
        cursor.execute(self.adapt(
            "SELECT fingerprint FROM kapok_view_schema WHERE tracking_name = :name"),
            {"name": self.projection})
        row = cursor.fetchone()
        return row["fingerprint"] if row else None

    def _rebuild_if_changed(self) -> None:
        """Drops, recreates and resets the projection if its stored fingerprint is not ours."""
        # The tracking name is part of it: positions kept under another name say nothing
        # of these tables.
        fingerprint = tables_fingerprint([*self.tables, f"-- tracked as {self.projection}"])
        with self.datastore.transaction(commit=False) as cursor:
            if self._stored_fingerprint(cursor) == fingerprint:
                return
        with self.datastore.transaction(commit=True) as cursor:
            # Write first, so this takes SQLite's write lock before reading: a second process
            # waits here, then finds the first one's fingerprint and rebuilds nothing.
            # (PostgreSQL's are serialised by ``schema_lock``.)
            cursor.execute(self.adapt(
                "INSERT INTO kapok_view_schema VALUES (:name, '') "
                "ON CONFLICT (tracking_name) DO NOTHING"), {"name": self.projection})
            if self._stored_fingerprint(cursor) == fingerprint:
                return
            position = self._max_tracking_id(self.projection, cursor)
            for sql in drop_statements(self.tables):
                cursor.execute(sql)
            cursor.execute(self.adapt(f"DELETE FROM {self.tracking_table} "
                                      "WHERE application_name = :name"),
                           {"name": self.projection})
            for sql in self._table_statements():
                cursor.execute(sql)
            cursor.execute(self.adapt(
                "UPDATE kapok_view_schema SET fingerprint = :fingerprint "
                "WHERE tracking_name = :name"),
                {"name": self.projection, "fingerprint": fingerprint})
        if position:
            logger.info("%s: table definitions changed; rebuilding from the event log "
                        "(was at position %d)", self.projection, position)


class SQLiteTablesRecorder(_TablesRecorder, SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.create_statements()]


@functools.cache
def _postgres_base():
    from psycopg.sql import SQL, Identifier

    from eventsourcing.postgres import PostgresTrackingRecorder

    class PostgresTablesRecorder(_TablesRecorder, PostgresTrackingRecorder):
        blob_type = "BYTEA"
        # A projection's rows can be made again from the event log, and an asynchronous
        # commit loses a whole transaction (rows and position together) or nothing, so its
        # writes need not wait for the disk.
        projection_settings = ("SET LOCAL synchronous_commit TO OFF",)

        def __init__(self, datastore, **kwargs):
            super().__init__(datastore, **kwargs)
            self.sql_create_statements.extend(SQL(sql) for sql in self.create_statements())

        @property
        def tracking_table(self) -> str:
            return self.table_name(self.tracking_table_name)

        def table_name(self, name: str) -> str:
            return SQL("{0}.{1}").format(Identifier(self.datastore.schema),
                                         Identifier(name)).as_string(None)

        def adapt(self, sql: str) -> str:
            return to_pyformat(sql)

        def write_range(self, name: str, first: int, last: int,
                        statements: Iterable[Statement]) -> None:
            # In psycopg's pipeline the statements go out together: a round trip for each
            # answer waited for (the two tracking checks, the commit), not one per statement.
            # Every statement's result is received (``sync``, inside the transaction) before
            # the last tracking statement, so the read of its answer cannot meet an earlier
            # statement's result.
            with self.datastore.transaction(commit=True) as cursor, \
                    cursor.connection.pipeline() as pipeline:
                self._write_range(cursor, name, first, last, statements, pipeline.sync)

    return PostgresTablesRecorder


@functools.cache
def _recorder_class(sqlite: bool, name: str, tables: tuple[str, ...], projection: str | None):
    base = SQLiteTablesRecorder if sqlite else _postgres_base()
    return type(name, (base,), {"tables": tables, "projection": projection})


# Each application's recorders, made (and their tables created) once per process: the web
# asks for the audit log's on many requests.
_RECORDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MAKING = threading.Lock()
CREATE_ATTEMPTS = 5


def tables_recorder(app, name: str, tables: Sequence[str], projection: str | None = None):
    """A recorder for ``tables`` on the application's own database and connection pool, the
    same one for the same tables of the same application.

    ``projection``, the tracking name of tables that are a projection of the event log: they
    are dropped, recreated and their position reset when their definitions change. (The audit
    log gives none: its signed tree heads could not be made again.)"""
    key = (name, tuple(tables), projection)
    with _MAKING:
        made = _RECORDERS.setdefault(app, {})
        if key not in made:
            made[key] = _new_tables_recorder(app, *key)
        return made[key]


def _new_tables_recorder(app, name: str, tables: tuple[str, ...], projection: str | None):
    sqlite = isinstance(app.factory, SQLiteFactory)
    cls = _recorder_class(sqlite, name, tables, projection)
    with schema_lock(app.env):
        return creating_tables(lambda: app.factory.tracking_recorder(cls))


def creating_tables(create: Callable[[], T]) -> T:
    """``create()``, tried again when SQLite refuses it as locked: eventsourcing creates
    SQLite tables in a transaction that reads before it writes, and another process's
    commit in between (workers starting together, the worker's projection) makes SQLite
    refuse it at once rather than wait."""
    attempts = 0
    while True:
        try:
            return create()
        except OperationalError as error:
            attempts += 1
            if "locked" not in str(error) or attempts == CREATE_ATTEMPTS:
                raise
            time.sleep(0.05 * 2**attempts)


SCHEMA_LOCK_KEY = 0x6B61706F6B  # "kapok": one advisory lock for all our table creation


@contextlib.contextmanager
def schema_lock(env) -> Iterator[None]:
    """Serialises table creation on PostgreSQL: gunicorn workers and tests start at the same
    moment on a new database, and concurrent CREATE TABLE / CREATE TYPE collide there
    ("tuple concurrently updated"). SQLite serialises writers by itself."""
    if not is_postgres(env):
        yield
        return
    import psycopg

    from ledger.adapters.pg_store import connection_settings

    # Named as the pools' connections are; no statement or lock timeout, as the lock is
    # held for as long as another process takes to create its tables.
    settings = {key: value for key, value in connection_settings(env).items()
                if key != "options"}
    try:
        connection = psycopg.connect(
            dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT"), user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None, autocommit=True, **settings)
    except psycopg.OperationalError as error:
        raise OperationalError(str(error).strip()) from None
    with connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
