"""Fifty buyers over HTTP (gunicorn, two workers, PostgreSQL) race for fewer tonnes than
they ask for: nobody gets tonnes that are not there, nobody sees a 5xx, every order ends
fulfilled (or was refused with a 409), and the audit verify passes afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.log import AuditLog
from ledger.audit.verification import verify
from market.application import Marketplace
from testbed.servers import free_port, start_worker, stop_worker
from tests.web.conftest import store_with_buyers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BUYERS, ASK, ON_OFFER = 50, 5, 120  # 250 t asked for, 120 t on offer


def call(url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else b"{}", method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def server(postgres_url, tmp_path):
    listing, tokens = store_with_buyers(postgres_url, BUYERS, ON_OFFER)
    port = free_port()
    env = {**os.environ, "KAPOK_DATABASE_URL": postgres_url, "KAPOK_SECRET_KEY": "race",
           "KAPOK_ENV": "development", "KAPOK_SIGNING_KEY_FILE": str(tmp_path / "key.pem")}
    log = open(tmp_path / "gunicorn.log", "w")
    worker = start_worker(env, str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:web.serving", "--workers", "2",
         "--bind", f"127.0.0.1:{port}",
         "--timeout", "60", "web:create_app()"], env=env, stdout=subprocess.DEVNULL,
        stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.3)
    yield base, listing, tokens
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    stop_worker(worker)
    log.close()


def test_fifty_buyers_racing_for_too_few_tonnes_never_oversell_and_never_fail(
        server, postgres_url, tmp_path):
    base, listing, tokens = server

    def buy(token: str) -> tuple[int, int | None, str | None]:
        status, order = call(f"{base}/api/v1/orders", token,
                             {"listing_id": listing, "tonnes": ASK})
        if status != 201:
            return status, None, order.get("message")
        paid, body = call(f"{base}/api/v1/orders/{order['order_id']}/pay", token)
        return status, paid, body.get("state")

    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        outcomes = list(pool.map(buy, tokens))

    statuses = [status for status, _, _ in outcomes]
    assert not [s for s in statuses if s >= 500], outcomes
    assert set(statuses) <= {201, 409}, outcomes
    won = [outcome for outcome in outcomes if outcome[0] == 201]
    assert len(won) == ON_OFFER // ASK  # every tonne sold, none twice
    assert all(paid == 200 and state == "fulfilled" for _, paid, state in won), won

    market = Marketplace(database=postgres_url)
    try:
        listing_now = market.get_listing(listing)
        assert (listing_now.sold, listing_now.reserved, listing_now.available) == (ON_OFFER, 0, 0)
        rows, total = market.caught_up_view().orders(limit=1000)
        assert total >= len(won) and {row["state"] for row in rows} <= {"fulfilled"}
        generate_key(tmp_path / "audit.pem")
        key = SigningKey.load(tmp_path / "audit.pem")
        AuditLog(market).follow(key)
        report = verify(market, key.public_pem)
        assert report.ok, report.problems[:5]
    finally:
        market.close()
