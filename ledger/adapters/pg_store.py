"""Kapok's PostgreSQL connections: eventsourcing's factory, with each pooled connection bounded
in time and the pool's wait configurable.

A database that stops answering (a hung server, a stalled network, a paused proxy) otherwise
holds every request that reaches it for as long as it lasts: the server's own timeouts cannot
fire for a query that never arrives, and TCP notices nothing while the peer's kernel still
acknowledges. So, on top of eventsourcing's settings:

- ``POSTGRES_STATEMENT_TIMEOUT`` (seconds, 0 for none): the server cancels a statement that
  runs longer, and the client gives up waiting for any answer a second after that: the
  connection is closed (the pool replaces it) and ``DatabaseTimeoutError`` is raised, which
  eventsourcing does not retry;
- ``POSTGRES_LOCK_TIMEOUT`` (eventsourcing's, seconds): also the session's ``lock_timeout``;
- ``POSTGRES_POOL_TIMEOUT`` (seconds, fractions allowed): how long one attempt waits for a
  pooled connection (eventsourcing's ``POSTGRES_CONNECT_TIMEOUT`` takes whole seconds only,
  and eventsourcing tries a read several times);
- TCP keepalives and ``tcp_user_timeout``, so that a connection to a host gone from the
  network fails in seconds rather than the kernel's minutes.

Selected by ``PERSISTENCE_MODULE=ledger.pg_store:Factory`` (``ledger.settings``).
"""

from __future__ import annotations

import time

import psycopg
from eventsourcing.postgres import PostgresFactory

from ledger.domain.errors import UnavailableError

# A connection idle this long is probed, every KEEPALIVE_INTERVAL, KEEPALIVE_COUNT times;
# sent data unacknowledged for TCP_USER_TIMEOUT_MS fails the connection.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT, TCP_USER_TIMEOUT_MS = 10, 5, 3, 10_000
CLIENT_MARGIN = 1.0  # seconds the client waits past the server's own statement timeout


class DatabaseTimeoutError(UnavailableError):
    """The database did not answer within the connection's deadline."""


_DEFAULT = object()  # no timeout given: a statement, a commit, a rollback


class DeadlineConnection(psycopg.Connection):
    """A connection that waits at most ``deadline`` seconds for the server's answer to a
    statement, a commit or a rollback (None: for ever, as psycopg does). A wait given its own
    timeout (``notifies()``, listening for new events) keeps it."""

    deadline: float | None = None

    def wait(self, gen, *args, timeout=_DEFAULT, **kwargs):
        if timeout is not _DEFAULT:
            return super().wait(gen, *args, timeout=timeout, **kwargs)
        started = time.monotonic()
        try:
            return super().wait(gen, *args, timeout=self.deadline, **kwargs)
        except psycopg.OperationalError:
            if self.deadline and time.monotonic() - started >= self.deadline:
                # Half a conversation is left on it: no further statement can use it.
                self.close()
                raise DatabaseTimeoutError(
                    f"the database did not answer within {self.deadline:g} s") from None
            raise


def _seconds(env, name: str, default: float = 0.0) -> float:
    value = env.get(name) or ""
    try:
        return float(value) if value else default
    except ValueError:
        raise OSError(f"{name} must be a number of seconds, not {value!r}") from None


def connection_settings(env) -> dict:
    """libpq's parameters for every new connection of a pool configured by ``env``."""
    settings = {"connect_timeout": max(2, int(_seconds(env, "POSTGRES_CONNECT_TIMEOUT", 5))),
                # Which of Kapok's processes holds a connection, in pg_stat_activity.
                "application_name": env.get("POSTGRES_APPLICATION_NAME") or "kapok",
                "keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE,
                "keepalives_interval": KEEPALIVE_INTERVAL, "keepalives_count": KEEPALIVE_COUNT,
                "tcp_user_timeout": TCP_USER_TIMEOUT_MS}
    options = [f"-c {name}={round(seconds * 1000)}" for name, seconds in (
        ("statement_timeout", _seconds(env, "POSTGRES_STATEMENT_TIMEOUT")),
        ("lock_timeout", _seconds(env, "POSTGRES_LOCK_TIMEOUT"))) if seconds > 0]
    if options:
        settings["options"] = " ".join(options)
    return settings


class Factory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, its pool's connections bounded as above."""

    def __init__(self, env):
        super().__init__(env)
        # Not opened yet: every connection gets these (tests/contract/test_psycopg.py).
        pool = self.datastore.pool
        pool.kwargs.update(connection_settings(self.env))
        statement_timeout = _seconds(self.env, "POSTGRES_STATEMENT_TIMEOUT")
        if statement_timeout > 0:
            pool.connection_class = type("DeadlineConnection", (DeadlineConnection,), {
                "deadline": statement_timeout + CLIENT_MARGIN})
        pool.timeout = _seconds(self.env, "POSTGRES_POOL_TIMEOUT", pool.timeout)
