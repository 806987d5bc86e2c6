"""PostgreSQL that hangs, and a pool that runs dry: requests answer 2xx or a 503 with
Retry-After within a bound (never 500, never for as long as it lasts), Kapok recovers by
itself, and one process holds only a few connections."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from ledger.read.projection import WORKER_CONNECTIONS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# A statement waits at most the web's statement timeout (5 s) and the client's margin past it
# (1 s); a read at most ten tries of 0.5 s for a pooled connection, 0.2 s apart; a request
# that meets the hang in two reads, both; and slack for a busy machine.
BOUND = 9.0
PAUSE = 12.0  # longer than the bound: a request that waits for the database shows


def test_while_the_database_hangs_requests_answer_503_within_the_bound_and_succeed_after(
        proxied):
    app, proxy, token, _ = proxied
    auth = {"Authorization": f"Bearer {token}"}
    listing = app.test_client().get("/api/v1/listings").get_json()["items"][0]["listing_id"]
    # Orders left unpaid pile up: caps well above what the load reserves (not their test).
    app.extensions["kapok_market"].set_reservation_caps(100_000, 100_000)
    calls: list[tuple[float, float, int, bool]] = []  # start, seconds, status, Retry-After
    stop = threading.Event()

    def client(kind: int):
        http = app.test_client()
        while not stop.is_set():
            started = time.monotonic()
            if kind % 2:
                response = http.post("/api/v1/orders", headers=auth,
                                     json={"listing_id": listing, "tonnes": 1})
            else:
                response = http.get("/api/v1/listings")
            calls.append((started, time.monotonic() - started, response.status_code,
                          "Retry-After" in response.headers))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    paused_at = time.monotonic()
    proxy.pause()
    time.sleep(PAUSE)
    resumed_at = time.monotonic()
    proxy.resume()
    time.sleep(6)
    stop.set()
    for thread in threads:
        thread.join(60)

    statuses = [status for _, _, status, _ in calls]
    assert set(statuses) <= {200, 201, 503}, statuses
    during = [call for call in calls if paused_at <= call[0] + call[1] and call[0] < resumed_at]
    slowest = max(seconds for _, seconds, _, _ in during)
    refused = [call for call in during if call[2] == 503]
    print(f"{len(calls)} requests, {len(during)} during the pause: {len(refused)} answered "
          f"503, slowest {slowest:.2f} s; after: {statuses[-5:]}")
    assert slowest < BOUND, sorted(seconds for _, seconds, _, _ in during)[-5:]
    assert refused and all(retry_after for *_, retry_after in refused)
    # Once it answers again, so does Kapok: the last seconds' requests all succeed.
    settled = [status for started, _, status, _ in calls if started > resumed_at + 3]
    assert settled and set(settled) <= {200, 201}, settled


def connections_to(postgres_url: str) -> int:
    name = urlsplit(postgres_url).path.lstrip("/")
    with psycopg.connect(postgres_url.replace(name, "postgres"), autocommit=True) as admin:
        return admin.execute(  # the web process's, not the worker's beside it
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name <> %s", (name, WORKER_CONNECTIONS)).fetchone()[0]


# Marketplace 2 kept + 6 under load, identity 1 + 1 (ledger/settings.py, identity/application.py).
PER_PROCESS = 10


def test_a_web_process_under_load_holds_a_few_connections(proxied):
    app, _, token, postgres_url = proxied
    auth = {"Authorization": f"Bearer {token}"}
    listing = app.test_client().get("/api/v1/listings").get_json()["items"][0]["listing_id"]
    seen: list[int] = []
    statuses: list[int] = []

    def buyer():
        http = app.test_client()
        for _ in range(5):
            statuses.append(http.post("/api/v1/orders", headers=auth, json={
                "listing_id": listing, "tonnes": 1}).status_code)
            statuses.append(http.get("/catalogue").status_code)

    threads = [threading.Thread(target=buyer) for _ in range(16)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        seen.append(connections_to(postgres_url))
        time.sleep(0.05)
    print(f"connections of one process under 16 clients: at most {max(seen)}")
    assert set(statuses) <= {200, 201}, statuses
    assert max(seen) <= PER_PROCESS


# Ten tries of 0.5 s for a pooled connection, 0.2 s apart, and slack for a busy machine.
POOL_BOUND = 8.5


def test_a_request_finding_every_pooled_connection_taken_gets_a_503_not_a_wait(proxied):
    app, _, _, _ = proxied
    http = app.test_client()
    pool = app.extensions["kapok_market"].recorder.datastore.pool
    assert http.get("/api/v1/listings").status_code == 200  # the gate asks nothing for a while
    held = [pool.getconn() for _ in range(pool.max_size)]
    try:
        timings = []
        for _ in range(2):
            started = time.monotonic()
            response = http.get("/api/v1/listings")
            timings.append(time.monotonic() - started)
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert response.get_json()["code"] == 503
    finally:
        for connection in held:
            pool.putconn(connection)
    print(f"with the pool exhausted: 503 after {timings[0]:.2f} s, the next after "
          f"{timings[1]:.3f} s")
    assert timings[0] < POOL_BOUND
    assert timings[1] < 1.0  # the gate asks again, and finds no connection either
    time.sleep(1.1)  # the gate's failure stands for a second
    after = http.get("/api/v1/listings")
    assert after.status_code == 200, after.get_data(as_text=True)
