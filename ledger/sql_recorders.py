"""Tables of our own beside the event store, written together with a tracked position.

Each is a subclass of eventsourcing's tracking recorder for its database, so that a page of
rows and the position it brings the tables to commit in one transaction. SQL is written once
with ``:name`` placeholders and ``{blob}`` for binary columns, and adapted per dialect.
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any, Iterable, Iterator, Sequence

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.sqlite import SQLiteFactory, SQLiteTrackingRecorder

Statement = tuple[str, dict[str, Any]]


def to_pyformat(sql: str) -> str:
    """``:name`` placeholders (SQLite) as ``%(name)s`` (psycopg)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)", r"%(\1)s", sql)


class SQLiteTablesRecorder(SQLiteTrackingRecorder):
    tables: Sequence[str] = ()

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                *(table.format(blob="BLOB") for table in self.tables)]

    def write(self, statements: Iterable[Statement], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
            self._insert_tracking(cursor, tracking)

    def query(self, sql: str, params: dict[str, Any]) -> list:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


@functools.cache
def _postgres_base():
    from psycopg.sql import SQL

    from eventsourcing.postgres import PostgresTrackingRecorder

    class PostgresTablesRecorder(PostgresTrackingRecorder):
        tables: Sequence[str] = ()

        def __init__(self, datastore, **kwargs):
            super().__init__(datastore, **kwargs)
            self.sql_create_statements.extend(
                SQL(table.format(blob="BYTEA")) for table in self.tables
            )

        def write(self, statements: Iterable[Statement], tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as cursor:
                for sql, params in statements:
                    cursor.execute(to_pyformat(sql), params)
                self._insert_tracking(cursor, tracking)

        def query(self, sql: str, params: dict[str, Any]) -> list:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(to_pyformat(sql), params)
                return cursor.fetchall()

    return PostgresTablesRecorder


@functools.cache
def _recorder_class(sqlite: bool, name: str, tables: tuple[str, ...]):
    base = SQLiteTablesRecorder if sqlite else _postgres_base()
    return type(name, (base,), {"tables": tables})


def tables_recorder(app, name: str, tables: Sequence[str]):
    """A recorder for ``tables`` on the application's own database and connection pool."""
    cls = _recorder_class(isinstance(app.factory, SQLiteFactory), name, tuple(tables))
    with schema_lock(app.env):
        return app.factory.tracking_recorder(cls)


SCHEMA_LOCK_KEY = 0x6B61706F6B  # "kapok": one advisory lock for all our table creation


@contextlib.contextmanager
def schema_lock(env) -> Iterator[None]:
    """Serialises table creation on PostgreSQL: gunicorn workers and tests start at the same
    moment on a new database, and concurrent CREATE TABLE / CREATE TYPE collide there
    ("tuple concurrently updated"). SQLite serialises writers by itself."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        yield
        return
    import psycopg

    try:
        connection = psycopg.connect(
            dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT"), user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None, autocommit=True,
            connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT") or 5),
        )
    except psycopg.OperationalError as error:
        raise OperationalError(str(error).strip()) from None
    with connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
