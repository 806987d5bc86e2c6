"""What Kapok's PostgreSQL factory (ledger/adapters/pg_store.py) relies on in psycopg and its
pool beyond their constructors: the pool eventsourcing builds is still unopened when the
factory sets its connection settings, class and wait, and ``Connection.wait`` takes the
timeout a deadline connection passes on."""

from __future__ import annotations

import inspect

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from ledger.adapters.pg_store import DeadlineConnection, Factory
from ledger.settings import persistence_env


def test_a_connection_waits_for_its_generator_with_a_timeout():
    parameters = inspect.signature(psycopg.Connection.wait).parameters

    assert list(parameters)[:2] == ["self", "gen"]
    assert "timeout" in parameters


def test_an_unopened_pool_keeps_what_its_next_connections_are_made_with():
    pool = ConnectionPool("", kwargs={"autocommit": False}, open=False)

    assert pool.kwargs == {"autocommit": False}
    assert pool.connection_class is psycopg.Connection
    assert isinstance(pool.timeout, float)


@pytest.mark.postgres
def test_the_factorys_connections_carry_its_settings_class_and_wait(postgres_url):
    env = {**persistence_env(postgres_url), "POSTGRES_STATEMENT_TIMEOUT": "5",
           "POSTGRES_POOL_TIMEOUT": "0.5", "POSTGRES_APPLICATION_NAME": "kapok contract"}
    factory = Factory(env)
    pool = factory.datastore.pool
    try:
        with factory.datastore.get_connection() as connection:
            name = connection.execute("SHOW application_name").fetchone()
            timeout = connection.execute("SHOW statement_timeout").fetchone()
            assert isinstance(connection, DeadlineConnection)
        assert list(name.values() if isinstance(name, dict) else name) == ["kapok contract"]
        assert list(timeout.values() if isinstance(timeout, dict) else timeout) == ["5s"]
        assert pool.timeout == 0.5
    finally:
        factory.datastore.close()
