"""Kapok as deployed: several web processes and the worker on one store, buyers ordering
through every instance while readers load the pages.

On PostgreSQL: two gunicorn instances (Kapok's serving settings, two workers each) and
``kapok worker``; midway a second worker starts beside it, the first is killed (-9) and
started again, then the second stops. On the embedded SQLite store: ``kapok serve`` as ``make run`` starts it.
Each buyer lists its orders on the other instance right after placing and paying one there:
it must see them. Afterwards: no 5xx, the worker alive, the read model equal to the ledger's
own replay, and the audit verify passes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.verification import verify
from ledger.read.replay import replay
from market.application import Marketplace
from testbed.servers import free_port, start_worker, stop_worker
from tests.web.conftest import store_with_buyers

pytestmark = pytest.mark.slow

BUYERS, READERS, SECONDS, ON_OFFER = 4, 2, 15, 5000
PAGES = ("/", "/registry", "/catalogue", "/transparency")


def request(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers),
                                    timeout=60) as response:
            text = response.read()
            return response.status, json.loads(text) if response.headers.get_content_type() \
                == "application/json" else {}
    except urllib.error.HTTPError as error:
        return error.code, {"message": error.read()[:300].decode(errors="replace")}


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the server exited ({process.returncode})"
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Load:
    """Buyers ordering, paying and listing their orders across instances; readers on the
    pages; every answer counted."""

    def __init__(self, bases: list[str], listing: str, tokens: list[str]):
        self.bases, self.listing, self.tokens = bases, listing, tokens
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.orders = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def _count(self, status: int, what: str, body: dict) -> None:
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500:
                self.failures.append(f"{status} {what}: {body.get('message', '')[:200]}")

    def buyer(self, number: int) -> None:
        token, turn = self.tokens[number], number
        while not self.done.is_set():
            here, there = self.bases[turn % 2], self.bases[(turn + 1) % 2]
            turn += 1
            status, order = request(f"{here}/api/v1/orders", token,
                                    {"listing_id": self.listing, "tonnes": 1})
            self._count(status, "place", order)
            if status != 201:
                continue
            status, paid = request(f"{here}/api/v1/orders/{order['order_id']}/pay", token, {})
            self._count(status, "pay", paid)
            status, listed = request(f"{there}/api/v1/orders?page_size=100", token)
            self._count(status, "list", listed)
            if status == 200:
                states = {item["order_id"]: item["state"] for item in listed["items"]}
                if states.get(order["order_id"]) != "fulfilled":
                    self.failures.append(f"{order['order_id']} paid on {here} listed on "
                                         f"{there} as {states.get(order['order_id'])}")
                with self._lock:
                    self.orders += 1

    def reader(self, number: int) -> None:
        turn = number
        while not self.done.is_set():
            path = PAGES[turn % len(PAGES)]
            status, body = request(self.bases[turn % 2] + path)
            self._count(status, f"GET {path}", body)
            turn += 1

    def summary(self) -> str:
        return (f"{self.orders} orders placed, paid and listed; answers by status: "
                f"{dict(sorted(self.statuses.items()))}")

    def run(self, seconds: float, meanwhile=lambda: None) -> None:
        threads = ([threading.Thread(target=self.buyer, args=(n,)) for n in range(BUYERS)]
                   + [threading.Thread(target=self.reader, args=(n,)) for n in range(READERS)])
        for thread in threads:
            thread.start()
        try:
            meanwhile()
            time.sleep(max(0.0, seconds))
        finally:
            self.done.set()
            for thread in threads:
                thread.join(120)


def assert_view_matches_the_ledger(url: str) -> None:
    """Once the worker has caught up: the view's balances are the replay's, and every order
    in the view has its aggregate's state."""
    market = Marketplace(database=url)
    try:
        market.view.wait(market.recorder.max_notification_id(), timeout=60)
        view = market.view
        key = ("account", "project", "vintage", "status", "quantity")
        viewed = sorted(tuple(row[k] for k in key) for row in view.balances()
                        if row["status"] not in ("retired", "cancelled"))  # not holdings
        replayed = sorted(tuple(row[k] for k in key) for row in replay(market).balances()
                          if row["quantity"])
        assert viewed == replayed
        rows, total = view.orders(limit=100_000)
        assert total == len(rows)
        for row in rows:
            assert market.get_order(row["order_id"]).state == row["state"], row["order_id"]
    finally:
        market.close()


def assert_verified(url: str, key: SigningKey) -> None:
    market = Marketplace(database=url)
    try:
        report = verify(market, key.public_pem)
        assert report.ok, report.problems[:5]
        assert report.heads_checked > 0  # the worker signed heads throughout
    finally:
        market.close()


def environment(url: str, tmp_path) -> tuple[dict, SigningKey]:
    key_file = tmp_path / "keys" / "signing.pem"
    generate_key(key_file)
    env = {**os.environ, "KAPOK_DATABASE_URL": url, "KAPOK_ENV": "development",
           "KAPOK_SECRET_KEY": "as-deployed", "KAPOK_SIGNING_KEY_FILE": str(key_file),
           "KAPOK_RATELIMIT_STORAGE_URI": "memory://",
           "KAPOK_ADDRESS_ATTEMPTS_PER_MINUTE": "100000"}
    return env, SigningKey.load(key_file)


@pytest.mark.postgres
def test_two_instances_and_the_worker_on_postgresql_serve_every_read_and_write(
        postgres_url, tmp_path):
    listing, tokens = store_with_buyers(postgres_url, BUYERS, ON_OFFER)
    env, key = environment(postgres_url, tmp_path)
    worker = start_worker(env, str(tmp_path))
    instances, bases = [], []
    try:
        for number in range(2):
            port = free_port()
            with open(tmp_path / f"web-{number}.log", "w") as log:
                instances.append(subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "-c", "python:web.serving", "-w", "2",
                     "-b", f"127.0.0.1:{port}", "web:create_app()"], env=env,
                    stdout=log, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
            wait_for(bases[-1], instances[-1])
        load = Load(bases, listing, tokens)
        second: list[subprocess.Popen] = []

        def restart_and_double_the_worker():
            # A second worker beside the first, the first killed (-9) mid-load and started
            # again, then the second stopped: two workers at once, and a restart, with one
            # always running (a gap with none is waited for up to KAPOK_VIEW_WAIT_SECONDS).
            nonlocal worker
            time.sleep(SECONDS / 3)
            second.append(start_worker(env, str(tmp_path)))
            time.sleep(SECONDS / 6)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            worker = start_worker(env, str(tmp_path))
            time.sleep(SECONDS / 6)
            stop_worker(second[0])

        load.run(SECONDS / 3, meanwhile=restart_and_double_the_worker)
        print("PostgreSQL, two instances:", load.summary())  # the figures of RELIABILITY.md
        assert worker.poll() is None, "the worker died"
        assert not load.failures, load.failures[:10]
        assert load.orders > 0 and load.statuses.get(200, 0) > 0, load.statuses
        assert_view_matches_the_ledger(postgres_url)
        time.sleep(3)  # a round of the worker signs a head over the last events
        assert_verified(postgres_url, key)
    finally:
        for process in instances:
            stop(process)
        stop_worker(worker)


def test_kapok_serve_on_the_embedded_store_serves_every_read_and_write(tmp_path):
    url = f"sqlite:///{tmp_path}/kapok.db"
    listing, tokens = store_with_buyers(url, BUYERS, ON_OFFER)
    env, key = environment(url, tmp_path)
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)], env=env,
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base, serve)
        load = Load([base, base], listing, tokens)
        load.run(SECONDS)
        print("SQLite, kapok serve:", load.summary())
        assert serve.poll() is None
        workers = subprocess.run(["pgrep", "-f", "-s", str(serve.pid), "cli worker"],
                                 capture_output=True, text=True).stdout.split()
        assert workers, "the worker died"
        assert not load.failures, load.failures[:10]
        assert load.orders > 0, load.statuses
        assert_view_matches_the_ledger(url)
        time.sleep(3)
        assert_verified(url, key)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(30)
