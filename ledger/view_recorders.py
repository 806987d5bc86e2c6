"""The read model's tables on each database, each a tracking recorder of eventsourcing's, so
that view rows and the tracked position commit in one transaction."""

from __future__ import annotations

import functools
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from ledger.view import TABLES, Statement, run_statements, to_pyformat


class SQLiteLedgerViewRecorder(SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *TABLES]

    def write(self, statements: list[Statement], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            run_statements(cursor, statements)
            self._insert_tracking(cursor, tracking)

    def query(self, sql: str, params: dict[str, Any]) -> list:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


@functools.cache
def _postgres_recorder_class():
    from psycopg.sql import SQL

    from eventsourcing.postgres import PostgresTrackingRecorder

    class PostgresLedgerViewRecorder(PostgresTrackingRecorder):
        def __init__(self, datastore, **kwargs):
            super().__init__(datastore, **kwargs)
            self.sql_create_statements.extend(SQL(statement) for statement in TABLES)

        def write(self, statements: list[Statement], tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as cursor:
                run_statements(cursor, statements, to_pyformat)
                self._insert_tracking(cursor, tracking)

        def query(self, sql: str, params: dict[str, Any]) -> list:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(to_pyformat(sql), params)
                return cursor.fetchall()

    return PostgresLedgerViewRecorder


def recorder_class_for(factory):
    """The view recorder class for the application's persistence module."""
    from eventsourcing.sqlite import SQLiteFactory

    if isinstance(factory, SQLiteFactory):
        return SQLiteLedgerViewRecorder
    return _postgres_recorder_class()
