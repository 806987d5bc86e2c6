"""Fail fast while the database is away.

eventsourcing tries a failed read again and again, waiting for a pooled connection each
time, so a request that meets a dead database would wait through every attempt. Before a
request, if the database was not asked in the last second, the gate asks it once, briefly;
while its last answer is a failure (or a request has just found the database away), requests
get a 503 at once. Under load that costs one ``SELECT 1`` per worker per second; on SQLite
nothing."""

from __future__ import annotations

import threading
import time


class DatabaseUnavailable(Exception):
    """The database did not answer the gate's question."""


class DatabaseGate:
    def __init__(self, pool, fresh_for: float = 1.0, wait: float = 0.5, clock=time.monotonic):
        self.pool, self.fresh_for, self.wait, self.clock = pool, fresh_for, wait, clock
        self.asked_at, self.failure = clock(), None
        self._asking = threading.Lock()

    def check(self) -> None:
        """Raises DatabaseUnavailable unless the database answered when last asked, and asks
        again when that is older than ``fresh_for``. One thread asks at a time; while it
        waits (as long as the connection's deadline when the database hangs), the others go
        by the last answer instead of queueing behind it."""
        if self.clock() - self.asked_at >= self.fresh_for and self._asking.acquire(False):
            try:
                with self.pool.connection(timeout=self.wait) as connection:
                    connection.execute("SELECT 1")
                self.failure = None
            except Exception as error:  # any failure to answer means the same here
                self.failure = str(error) or type(error).__name__
            finally:
                self.asked_at = self.clock()
                self._asking.release()
        if self.failure is not None:
            raise DatabaseUnavailable(self.failure)

    def report(self, failure: str) -> None:
        """A request found the database away: the next ones hear it at once, until the gate
        asks again."""
        self.failure, self.asked_at = failure, self.clock()


def gate_for(app_service) -> DatabaseGate | None:
    """A gate over the application's PostgreSQL pool; None for SQLite (a local file)."""
    from psycopg_pool import ConnectionPool

    pool = getattr(getattr(app_service.recorder, "datastore", None), "pool", None)
    return DatabaseGate(pool) if isinstance(pool, ConnectionPool) else None
