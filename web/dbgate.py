"""Fail fast while the database is away.

eventsourcing retries a failed read ten times, waiting for a pooled connection each time,
so a request that meets a dead database would hang for many seconds (longer than gunicorn's
worker timeout). Before a request, if the database has not answered in the last second, the
gate asks it once, briefly; when it does not answer, the request gets a 503 at once. Under
load that costs one ``SELECT 1`` per worker per second; on SQLite nothing."""

from __future__ import annotations

import threading
import time


class DatabaseUnavailable(Exception):
    """The database did not answer the gate's question."""


class DatabaseGate:
    def __init__(self, pool, fresh_for: float = 1.0, wait: float = 0.5, clock=time.monotonic):
        self.pool, self.fresh_for, self.wait, self.clock = pool, fresh_for, wait, clock
        self.answered_at = clock()
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raises DatabaseUnavailable unless the database answered recently or answers now."""
        if self.clock() - self.answered_at < self.fresh_for:
            return
        with self._lock:
            if self.clock() - self.answered_at < self.fresh_for:
                return
            try:
                with self.pool.connection(timeout=self.wait) as connection:
                    connection.execute("SELECT 1")
            except Exception as error:  # any failure to answer means the same here
                raise DatabaseUnavailable(str(error)) from None
            self.answered_at = self.clock()


def gate_for(app_service) -> DatabaseGate | None:
    """A gate over the application's PostgreSQL pool; None for SQLite (a local file)."""
    from psycopg_pool import ConnectionPool

    pool = getattr(getattr(app_service.recorder, "datastore", None), "pool", None)
    return DatabaseGate(pool) if isinstance(pool, ConnectionPool) else None
