"""Ledger write speed against the raw stack, and cost against size, in one run.

    python -m bench.ledger_writes [--store sqlite|postgres] [--operations 2000] [--history 100000]

1. Transfers and retirements per second, each splitting a block, beside the raw throughput of
   eventsourcing doing the same number of events per atomic save (load two trivial aggregates,
   one event each, save both) on the same store. Goal: Kapok >= 50% of raw.
2. Cost against size: a 1-tonne transfer out of a 10,000,000-tonne block vs out of a 10-tonne
   block (goal: ratio <= 1.2), and a sale from an inventory that already made ``--history``
   sales vs from a fresh one (goal: <= 2x).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import drop_store, new_store, run_facts, write_json
from ledger.application import Ledger
from ledger.domain.ids import public_id
from ledger.domain.projects import Vintage
from ledger.domain.retirements import RetirementClaim
from testbed.builders import INVENTORY, project_details


class Counter(Aggregate):
    """The raw baseline's trivial aggregate."""

    @event("Started")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


class RawApp(Application):
    pass


def raw_pairs_per_second(url: str, operations: int) -> float:
    """eventsourcing alone, as it ships (its own recorder, not Kapok's one-statement save):
    load two aggregates, one event each, one atomic save."""
    from ledger.settings import persistence_env

    env = persistence_env(url)
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    app = RawApp(env=env)
    pairs = [(Counter(), Counter()) for _ in range(50)]
    app.save(*[a for pair in pairs for a in pair])
    ids = [(a.id, b.id) for a, b in pairs]
    started = time.perf_counter()
    for i in range(operations):
        a_id, b_id = ids[i % len(ids)]
        a, b = app.repository.get(a_id), app.repository.get(b_id)
        a.increment()
        b.increment()
        app.save(a, b)
    seconds = time.perf_counter() - started
    app.close()
    return operations / seconds


def seeded_ledger(url: str, issue: int = 10_000_000) -> Ledger:
    ledger = Ledger(database=url)
    ledger.register_project(project_details("VCS-1067", buffer_percent="0"))
    ledger.add_vintage("VCS-1067", Vintage(2021))
    ledger.ensure_account(INVENTORY, "inventory", "Ecosphere+")
    for i in range(50):
        ledger.ensure_account(f"buyer-{i:02d}", "holding", "buyer")
    ledger.issue("VCS-1067", 2021, issue)
    return ledger


def kapok_per_second(url: str, operations: int, kind: str) -> float:
    """Transfers (or retirements) of 1-3 t, each splitting a block, from 50 buyer accounts."""
    ledger = seeded_ledger(url)
    for i in range(50):
        ledger.transfer(INVENTORY, f"buyer-{i:02d}", quantity=operations)
    claim = RetirementClaim("Bench S.A.", "Other")
    started = time.perf_counter()
    for i in range(operations):
        account = f"buyer-{i % 50:02d}"
        if kind == "transfer":
            ledger.transfer(account, f"buyer-{(i + 1) % 50:02d}", quantity=1 + i % 3)
        else:
            ledger.retire(account, claim, quantity=1 + i % 3)
    seconds = time.perf_counter() - started
    ledger.close()
    return operations / seconds


def median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def block_size_ratio(url_big: str, url_small: str, repeats: int) -> dict:
    """1 t out of the middle of a 10,000,000 t block vs out of a 10 t block."""
    big = seeded_ledger(url_big, 10_000_000)
    small = seeded_ledger(url_small, 10)
    big_first = big.get_account(INVENTORY).blocks[0].first
    small_first = small.get_account(INVENTORY).blocks[0].first
    from ledger.domain.serials import SerialRange

    counter = {"big": 0, "small": 0}

    def take(ledger, first, name, span):
        counter[name] += 1
        serial = first + (counter[name] * 7919) % span  # somewhere inside, never twice
        ledger.transfer(INVENTORY, "buyer-00", serials=SerialRange(serial, serial))

    big_s = median_seconds(lambda: take(big, big_first, "big", 9_000_000), repeats)
    small_s = median_seconds(lambda: take(small, small_first, "small", 10), min(repeats, 9))
    big.close()
    small.close()
    return {"big_block_ms": round(big_s * 1000, 3), "small_block_ms": round(small_s * 1000, 3),
            "ratio": round(big_s / small_s, 3), "goal": "<= 1.2"}


def history_ratio(url_old: str, url_new: str, history: int, repeats: int) -> dict:
    """A sale from an inventory with ``history`` past sales vs from a fresh inventory."""
    old = seeded_ledger(url_old)
    inventory = old.get_account(INVENTORY)
    buyers = [old.get_account(f"buyer-{i:02d}") for i in range(50)]
    done = 0
    while done < history:  # many sales per save, to build the history quickly
        batch = min(1000, history - done)
        for i in range(batch):
            blocks = inventory.pick(1, None)
            buyer = buyers[(done + i) % 50]
            transfer_id = public_id("KAP-TRF")
            inventory.send(blocks, buyer.name, transfer_id)
            buyer.receive(blocks, inventory.name, transfer_id)
        old.store.save(inventory, *buyers)
        done += batch
    new = seeded_ledger(url_new)
    old_s = median_seconds(lambda: old.transfer(INVENTORY, "buyer-01", quantity=1), repeats)
    new_s = median_seconds(lambda: new.transfer(INVENTORY, "buyer-01", quantity=1), repeats)
    events = old.recorder.max_notification_id()
    old.close()
    new.close()
    return {"past_sales": history, "events_in_store": events,
            "old_inventory_ms": round(old_s * 1000, 3), "fresh_inventory_ms": round(new_s * 1000, 3),
            "ratio": round(old_s / new_s, 3), "goal": "<= 2"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="kapok-bench-")
    urls = []

    def new_url():
        urls.append(new_store(args.store, workdir))
        return urls[-1]

    try:
        raw = raw_pairs_per_second(new_url(), args.operations)
        transfers = kapok_per_second(new_url(), args.operations, "transfer")
        retirements = kapok_per_second(new_url(), args.operations, "retire")
        size = block_size_ratio(new_url(), new_url(), args.repeats)
        history = history_ratio(new_url(), new_url(), args.history, args.repeats)
    finally:
        for url in urls:
            drop_store(url)
        shutil.rmtree(workdir, ignore_errors=True)  # SQLite's files
    summary = {
        "benchmark": "ledger_writes", "store": args.store, "operations": args.operations,
        **run_facts(),
        "writes": {
            "raw_pairs_per_second": round(raw),
            "transfers_per_second": round(transfers), "transfer_ratio_to_raw": round(transfers / raw, 3),
            "retirements_per_second": round(retirements), "retirement_ratio_to_raw": round(retirements / raw, 3),
            "goal": ">= 0.5",
        },
        "block_size": size,
        "history": history,
    }
    w = summary["writes"]
    print(f"store: {args.store}")
    print(f"{'raw eventsourcing (2 events/save)':<40} {w['raw_pairs_per_second']:>8,}/s  1.00")
    print(f"{'transfers (block split)':<40} {w['transfers_per_second']:>8,}/s  {w['transfer_ratio_to_raw']:.2f}")
    print(f"{'retirements (block split)':<40} {w['retirements_per_second']:>8,}/s  {w['retirement_ratio_to_raw']:.2f}")
    print(f"1 t from a 10,000,000 t block vs a 10 t block: {size['big_block_ms']} ms vs "
          f"{size['small_block_ms']} ms, ratio {size['ratio']} (goal <= 1.2)")
    print(f"sale after {history['past_sales']:,} sales vs fresh: {history['old_inventory_ms']} ms vs "
          f"{history['fresh_inventory_ms']} ms, ratio {history['ratio']} (goal <= 2)")
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
