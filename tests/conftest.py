"""Fixtures shared by every tier: stores on SQLite and PostgreSQL, and a fresh ledger."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid

import pytest

from ledger.application import Ledger
from ledger.read.projection import WORKER_CONNECTIONS, keep_view_projected

POSTGRES_ADMIN_DSN = os.environ.get(
    "KAPOK_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _admin_connection():
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5)


def require_postgres() -> None:
    """Skips locally, but fails in CI, when the PostgreSQL server cannot be reached."""
    try:
        _admin_connection().close()
    except Exception as error:  # any connection failure means the same thing here
        unreachable(f"PostgreSQL unreachable ({POSTGRES_ADMIN_DSN}): {error}")


def unreachable(message: str) -> None:
    """A server a test needs is away: the test is skipped locally, and fails in CI."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url():
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    name = f"kapok_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with _admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


REDIS_URL = os.environ.get("KAPOK_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def require_redis() -> None:
    """Skips locally, but fails in CI, when the Redis server cannot be reached."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unreachable(f"Redis unreachable ({REDIS_URL}): {error}")


@pytest.fixture
def redis_limits():
    """Settings that count rate limits in the Redis server, under keys of this test's own
    (other tests may share the server at the same time), deleted afterwards."""
    import redis

    require_redis()
    prefix = f"kapok-test-{uuid.uuid4().hex[:12]}"
    yield {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    server = redis.Redis.from_url(REDIS_URL)
    keys = list(server.scan_iter(match=f"*{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        server.delete(*keys[start:start + 1000])
    server.close()


@pytest.fixture(autouse=True)
def checkpoint_file_in_tmp(tmp_path):
    """Each test's audit log publishes its checkpoints to a file of its own (processes the
    test starts inherit it). A patch of its own: a test's ``monkeypatch.undo()`` keeps it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAPOK_CHECKPOINT_LOG_FILE", str(tmp_path / "published-checkpoints.log"))
        yield


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/kapok.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request):
    """Each test that uses this runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def ledger(database_url):
    app = Ledger(database=database_url)
    yield app
    app.close()


@contextlib.contextmanager
def view_worker(market):
    """The worker's projection (eventsourcing's runner, started again when it fails) beside
    a test's app, on an application instance of its own, as `kapok worker` runs beside the
    web: the only writer of the read model."""
    worker = type(market)(env={**market.store.view_env(),
                               "POSTGRES_APPLICATION_NAME": WORKER_CONNECTIONS})
    stop = threading.Event()
    thread = threading.Thread(target=keep_view_projected, args=(worker.store, stop),
                              kwargs={"every": 0.1}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        worker.close()


def settled(market):
    """``market`` after the worker's projection has applied everything stored so far: what
    a page shows once others' writes (here, the test's own calls) reach the read model."""
    market.view.wait(market.recorder.max_notification_id(), timeout=10)
    return market


def expire_as_the_worker(market) -> list[str]:
    """A round of `kapok worker`: the view projected, then the due reservations it lists
    expired."""
    market.caught_up_view()
    return market.expire_due_orders()


def pytest_sessionfinish(session, exitstatus):
    # In CI no test may be skipped silently: a skip there fails the run.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter and reporter.stats.get("skipped") and exitstatus == 0:
        reporter.write_line("CI=true: tests were skipped; failing the run", red=True)
        session.exitstatus = 1
