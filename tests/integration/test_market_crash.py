"""Crash safety of payment fulfilment, on SQLite and PostgreSQL. A worker process settles the
provider's "payment succeeded" events and is killed with SIGKILL between two events, inside a
save, just after a save and at random moments; after each crash the provider delivers every
event again, from the first (at least once, as Stripe does). Every order must be fulfilled
exactly once, and at each crash every sale must be either wholly settled or not at all."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from ledger.domain.accounts import Account, account_id
from ledger.read.replay import stored_events
from market.application import Marketplace
from market.domain.orders import FULFILLED, Order, ProcessedPaymentEvent
from market.domain.payments import SUCCEEDED, PaymentEvent
from market.domain.proceeds import SALE
from tests.integration.market_scenario import (
    BUYER,
    assert_sound,
    journal_entries,
    seed_market,
    serial_numbers,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 30
KILLED = -signal.SIGKILL

# The worker: its own Marketplace, one line per event it has acted on. Told to, it stops inside
# the save of one event and says so, so that the test can kill it at that very point:
# "before-commit" once the save's rows are written but not committed, "after-commit" once they
# are committed but before the outcome is reported. (The hooks name the recorders' internals.
# On SQLite, eventsourcing's commits between its inner write and the return of insert_events;
# on PostgreSQL, Kapok's sends the insert and its commit together, so the hook writes the rows
# in a transaction of its own and pauses before committing it.)
WORKER = r"""
import json, sys, time
from market.application import Marketplace
from market.domain.payments import OfflinePaymentProvider, PaymentEvent

url, events_file, pause_where, pause_event = sys.argv[1:5]
app = Marketplace(database=url, payments=OfflinePaymentProvider())
marked = None

def report(*words):
    # One write per line, so a kill never leaves half a line (PYTHONUNBUFFERED makes print()
    # write each word apart).
    sys.stdout.write(" ".join(words) + "\n")
    sys.stdout.flush()

def pause_in_save(name):
    write = getattr(app.recorder, name)
    def write_then_pause(*args, **kwargs):
        result = write(*args, **kwargs)
        if marked == pause_event:
            report("paused", pause_where, pause_event)
            time.sleep(60)
        return result
    setattr(app.recorder, name, write_then_pause)

def pause_before_commit_on_postgres():
    recorder = app.recorder
    def write_then_pause(connection, events):
        if marked != pause_event:
            return commit_in_turn(connection, events)
        connection.execute(recorder._insert_call, events)  # in the command's transaction
        report("paused", pause_where, pause_event)
        time.sleep(60)
    def write_alone_then_pause(events):
        if marked != pause_event:
            return insert_alone(events)
        with recorder.datastore.get_connection() as connection:
            connection.execute("BEGIN")
            write_then_pause(connection, events)
    commit_in_turn, insert_alone = recorder._insert_and_commit, recorder._insert
    recorder._insert_and_commit, recorder._insert = write_then_pause, write_alone_then_pause

if pause_where == "before-commit":
    if url.startswith("sqlite"):
        pause_in_save("_insert_events")
    else:
        pause_before_commit_on_postgres()
elif pause_where == "after-commit":
    pause_in_save("insert_events")
with open(events_file) as file:
    events = json.load(file)
try:
    report("ready")
    for fields in events:
        marked = fields["event_id"]
        report(marked, app.handle_payment_event(PaymentEvent(**fields)))
finally:
    app.close()
"""


@dataclass
class Sale:
    """An order placed and its payment started, and the provider's event saying it was paid."""

    listing_id: str
    order_id: str
    tonnes: int
    serials: set[int]  # those the order reserved in its escrow account
    event: PaymentEvent


@dataclass
class Run:
    """One delivery of every event to a new worker, and how it ended."""

    how: str
    outcomes: dict[str, str]  # event id -> outcome, as far as the worker reported
    returncode: int
    seconds: float  # from the worker's start of work to its end


def place_orders_and_start_payments(app: Marketplace) -> list[Sale]:
    """ORDERS reserved orders of 2-6 t for one buyer, each with a payment started and the
    provider's 'payment succeeded' event for it (net of a card fee)."""
    listing_id = seed_market(app)
    sales = []
    for number in range(ORDERS):
        order_id = app.place_order(listing_id, 2 + number % 5, "Acme", BUYER)["order_id"]
        payment_id = app.start_payment(order_id)["payment_id"]
        order = app.get_order(order_id)
        event = PaymentEvent(f"evt_crash_{number:02d}_{payment_id}", SUCCEEDED, payment_id,
                             order_id, order.total_minor, order.currency,
                             fee_minor=30 + order.total_minor * 29 // 1000)
        serials = serial_numbers(app.ledger.get_account(order.escrow_name).blocks)
        sales.append(Sale(listing_id, order_id, order.tonnes, serials, event))
    return sales


def settled_sales(app: Marketplace, sales: list[Sale]) -> list[Sale]:
    """The sales the store shows settled; fails on any sale settled only in part."""
    booked = [entry.reference for entry in journal_entries(app) if entry.kind == SALE]
    settled = []
    for sale in sales:
        order = app.get_order(sale.order_id)
        parts = {
            "order fulfilled": order.state == FULFILLED,
            "serials out of escrow": app.ledger.get_account(order.escrow_name).balance == 0,
            "proceeds booked": sale.order_id in booked,
            "event recorded": bool(app.recorder.select_events(
                ProcessedPaymentEvent.create_id(sale.event.event_id), limit=1)),
        }
        assert set(parts.values()) in ({True}, {False}), f"{sale.order_id} half settled: {parts}"
        if parts["order fulfilled"]:
            settled.append(sale)
    # The counters and the buyer's holdings add up to the settled sales, and only those.
    listing = app.get_listing(sales[0].listing_id)
    assert listing.sold == sum(sale.tonnes for sale in settled)
    assert listing.reserved == sum(sale.tonnes for sale in sales if sale not in settled)
    assert serial_numbers(app.ledger.get_account(BUYER).blocks) == set().union(
        *(sale.serials for sale in settled))
    assert sorted(booked) == sorted(sale.order_id for sale in settled)
    return settled


@dataclass
class Provider:
    """Delivers every event, from the first, to a new worker process each time."""

    url: str
    events_file: Path
    log: Path  # the workers' stderr
    runs: list[Run] = field(default_factory=list)

    @contextmanager
    def worker(self, *pause: str):
        with self.log.open("a") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", WORKER, self.url, str(self.events_file),
                 *(pause or ("", ""))], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
            try:
                yield process
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                process.wait()
                process.stdout.close()

    def deliver(self, how: str, until: Callable[[subprocess.Popen], list[str]] | None = None,
                *pause: str) -> Run:
        """One delivery to a new worker, killed with SIGKILL as soon as ``until`` returns
        the lines it read (or waited for), or left to run to the end if ``until`` is None."""
        with self.worker(*pause) as process:
            assert self.line(process) == "ready"
            started = time.monotonic()
            lines = []
            if until is not None:
                lines = until(process)
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            seconds = time.monotonic() - started
            lines += process.stdout.read().split("\n")[:-1]  # whole lines written before it died
        outcomes = dict(line.split(" ", 1) for line in lines if not line.startswith("paused "))
        run = Run(how, outcomes, process.returncode, seconds)
        self.runs.append(run)
        print(f"{how}: {len(outcomes)} events reported, exit {run.returncode}, "
              f"{seconds:.3f} s")  # shown by pytest when the test fails
        return run

    def line(self, process: subprocess.Popen) -> str:
        line = process.stdout.readline()
        assert line.endswith("\n"), f"the worker stopped:\n{self.log.read_text()}"
        return line.rstrip("\n")

    def read_until_paused(self, process: subprocess.Popen) -> list[str]:
        lines = []
        while not (line := self.line(process)).startswith("paused "):
            lines.append(line)
        return lines

    # The ways a delivery ends.
    def kill_after_reports(self, count: int) -> Run:
        return self.deliver(f"killed after {count} reports",
                            lambda process: [self.line(process) for _ in range(count)])

    def kill_inside_save(self, event_id: str, where: str) -> Run:
        return self.deliver(f"killed {where} of {event_id}", self.read_until_paused,
                            where, event_id)

    def kill_after(self, seconds: float) -> Run:
        def wait(_) -> list[str]:
            time.sleep(seconds)
            return []

        return self.deliver(f"killed after {seconds:.3f} s", wait)

    def to_the_end(self) -> Run:
        return self.deliver("to the end")


def test_a_payment_is_fulfilled_exactly_once_though_its_worker_is_killed_and_the_event_redelivered(
        database_url, tmp_path):
    app = Marketplace(database=database_url)
    try:
        sales = place_orders_and_start_payments(app)
        events_file = tmp_path / "events.json"
        events_file.write_text(json.dumps([asdict(sale.event) for sale in sales]))
        provider = Provider(database_url, events_file, tmp_path / "worker.log")

        # 1. The worker is killed between two events, once half of them are reported.
        first = provider.kill_after_reports(ORDERS // 2)
        settled = settled_sales(app, sales)
        assert first.returncode == KILLED
        assert ORDERS // 2 <= len(settled) < ORDERS  # a real crash, in mid-stream

        # 2. Every event again: the worker is killed inside the save of the first sale not
        # yet settled, with its rows written but not committed. Nothing of it may remain.
        target = sales[len(settled)]
        run = provider.kill_inside_save(target.event.event_id, "before-commit")
        assert run.returncode == KILLED
        assert settled_sales(app, sales) == settled
        assert all(run.outcomes[sale.event.event_id] == "duplicate" for sale in settled)

        # 3. Again: now it is killed just after that save committed, before it could report.
        # The sale is wholly settled, though no worker ever said so.
        run = provider.kill_inside_save(target.event.event_id, "after-commit")
        assert run.returncode == KILLED
        assert settled_sales(app, sales) == [*settled, target]
        assert target.event.event_id not in run.outcomes

        # 4. Again, twice: killed at a random moment while sales remain to settle, so the
        # kill may land anywhere in a settlement (or after the worker is done).
        per_sale = first.seconds / (ORDERS // 2)
        for _ in range(2):
            unsettled = ORDERS - len(settled_sales(app, sales))
            provider.kill_after(random.uniform(0, per_sale * unsettled))
            print(f"  then {len(settled_sales(app, sales))} of {ORDERS} sales are settled")

        # 5. The last delivery runs to the end: what was settled is a duplicate, the rest is
        # fulfilled now.
        before = {sale.event.event_id for sale in settled_sales(app, sales)}
        last = provider.to_the_end()
        assert last.returncode == 0, provider.log.read_text()
        assert last.outcomes == {
            sale.event.event_id: "duplicate" if sale.event.event_id in before else "fulfilled"
            for sale in sales}

        # Every sale is settled, and no worker ever reported one fulfilled twice.
        assert settled_sales(app, sales) == sales
        reported = Counter(event_id for run in provider.runs
                           for event_id, outcome in run.outcomes.items() if outcome == "fulfilled")
        assert set(reported.values()) == {1}
        assert all(outcome in ("fulfilled", "duplicate")
                   for run in provider.runs for outcome in run.outcomes.values())

        # The store holds one Paid and one Fulfilled event per order, one record per provider
        # event, and one transfer to the buyer per order: the one the order names.
        events = [event for _, event in stored_events(app)]
        orders = {Order.create_id(sale.order_id) for sale in sales}
        records = {ProcessedPaymentEvent.create_id(sale.event.event_id) for sale in sales}
        for kind, ids in ((Order.Paid, orders), (Order.Fulfilled, orders),
                          (ProcessedPaymentEvent.Processed, records)):
            counted = Counter(e.originator_id for e in events if isinstance(e, kind))
            assert counted == Counter(ids), kind.__qualname__
        transfers = [e.transfer_id for e in events
                     if isinstance(e, Account.Received) and e.originator_id == account_id(BUYER)]
        assert sorted(transfers) == sorted(app.get_order(sale.order_id).delivery_reference
                                           for sale in sales)

        total = sum(sale.tonnes for sale in sales)
        listing = app.get_listing(sales[0].listing_id)
        assert (listing.reserved, listing.sold) == (0, total)
        assert app.ledger.get_account(BUYER).balance == total
        # The registry replayed from its events, the proceeds journal and the listings audit
        # clean: validate(replay(app)) and validate_balanced() are both empty.
        assert_sound(app)
    finally:
        app.close()
