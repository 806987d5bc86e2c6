"""The cost of one market sale against the number of sales made before, in one run.

    python -m bench.market_sales [--store sqlite|postgres] [--history 5000] [--repeats 51]

A sale is the whole order flow of the service layer: place an order of 1 t on the demo's
VCS-1067 2021 listing and pay it with the offline provider (reserve, settle, deliver, book the
proceeds). Measured on a store that already made ``--history`` such sales and on a fresh one
(the demo alone), each by the median of ``--repeats`` sales: warm (the process has served
sales already) and cold (the first sale of a new process, which reads the listing, the
inventory and the proceeds journal from the store). Goal: the old store within 2x of the fresh.

On PostgreSQL it also times the turns: how long placing and paying each hold the turns of
their hot aggregates (``Store._taking_turns``), from the query that takes them to the
``COMMIT`` that ends them, on the fresh store. Every sale's two commands take the listing's
turn, so commands on one listing run one after another, whatever the number of web workers:
``1000 / (place + pay)`` is the most orders per second one listing can take on this machine
when nothing else runs (a ceiling for the HTTP benchmark's order phases).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time

from rich.progress import Progress

from bench.common import drop_store, new_store, run_facts, write_json

LISTING_KEY = "demo:listing:VCS-1067:2021"
BUYER = "bench-buyer"


def demo_market(url: str):
    from ledger.demo import demo_steps
    from market.application import Marketplace
    from market.demo import market_demo_steps

    market = Marketplace(database=url)
    for _label, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    market.ledger.open_account(f"org-{BUYER}", owner=BUYER)
    return market


def listing_of(market) -> str:
    from market.domain.listings import listing_id_for

    return str(listing_id_for(LISTING_KEY))


def sell(market, listing: str) -> None:
    order = market.place_order(listing, 1, BUYER, f"org-{BUYER}")
    market.pay_offline(order["order_id"])


def make_history(market, sales: int) -> None:
    listing = listing_of(market)
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{sales:,} past sales", total=sales)
        for _ in range(sales):
            sell(market, listing)
            progress.advance(task)


def warm_ms(market, repeats: int) -> float:
    listing = listing_of(market)
    sell(market, listing)  # this process has read everything once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sell(market, listing)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@contextlib.contextmanager
def turn_clock(market):
    """Collects how long each command held its turns (ms), in the order of the commands.
    Wraps the recorder's two calls of a held transaction: the read that takes the turns and
    the insert that commits it."""
    recorder, held, started = market.recorder, [], []
    take, commit = recorder.take_turns_and_read, recorder._insert_and_commit

    def timed_take(*args, **kwargs):
        started.append(time.perf_counter())
        return take(*args, **kwargs)

    def timed_commit(*args, **kwargs):
        try:
            return commit(*args, **kwargs)
        finally:
            held.append((time.perf_counter() - started.pop()) * 1000)

    recorder.take_turns_and_read, recorder._insert_and_commit = timed_take, timed_commit
    try:
        yield held
    finally:
        del recorder.take_turns_and_read, recorder._insert_and_commit


def turns_ms(market, repeats: int) -> dict:
    """Median ms each of a sale's two commands holds its turns, and the ceiling they set."""
    listing = listing_of(market)
    sell(market, listing)
    with turn_clock(market) as held:
        for _ in range(repeats):
            sell(market, listing)
    if len(held) != 2 * repeats:  # one held transaction per command, or the clock is wrong
        raise RuntimeError(f"expected {2 * repeats} held commands, timed {len(held)}")
    place, pay = statistics.median(held[0::2]), statistics.median(held[1::2])
    return {"place_turn_ms": place, "pay_turn_ms": pay,
            "one_listing_ceiling_orders_per_second": 1000 / (place + pay)}


def cold_ms(url: str, repeats: int) -> float:
    """The first sale of a new Marketplace (a new web worker), ``repeats`` times."""
    from market.application import Marketplace

    times = []
    for _ in range(repeats):
        market = Marketplace(database=url)
        try:
            started = time.perf_counter()
            sell(market, listing_of(market))
            times.append(time.perf_counter() - started)
        finally:
            market.close()
    return statistics.median(times) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="kapok-bench-")
    old_url, new_url = new_store(args.store, workdir), new_store(args.store, workdir)
    try:
        old, new = demo_market(old_url), demo_market(new_url)
        make_history(old, args.history)
        result = {"old_warm_ms": warm_ms(old, args.repeats),
                  "new_warm_ms": warm_ms(new, args.repeats)}
        if args.store == "postgres":
            result.update(turns_ms(new, args.repeats))
        events = old.recorder.max_notification_id()
        old.close()
        new.close()
        result["old_cold_ms"] = cold_ms(old_url, max(5, args.repeats // 5))
        result["new_cold_ms"] = cold_ms(new_url, max(5, args.repeats // 5))
    finally:
        drop_store(old_url)
        drop_store(new_url)
        shutil.rmtree(workdir, ignore_errors=True)  # SQLite's files
    summary = {
        "benchmark": "market_sales", "store": args.store, "past_sales": args.history,
        "events_in_old_store": events, "repeats": args.repeats, **run_facts(),
        **{name: round(value, 3) for name, value in result.items()},
        "warm_ratio": round(result["old_warm_ms"] / result["new_warm_ms"], 3),
        "cold_ratio": round(result["old_cold_ms"] / result["new_cold_ms"], 3),
        "goal": "<= 2",
    }
    print(f"store: {args.store}; a sale (place + pay, 1 t) after {args.history:,} sales vs on "
          f"a fresh store, median")
    for kind in ("warm", "cold"):
        print(f"  {kind}: {summary[f'old_{kind}_ms']:.2f} ms vs {summary[f'new_{kind}_ms']:.2f} ms,"
              f" ratio {summary[f'{kind}_ratio']:.2f} (goal <= 2)")
    if "place_turn_ms" in summary:
        print(f"  turns held: placing {summary['place_turn_ms']:.2f} ms, paying "
              f"{summary['pay_turn_ms']:.2f} ms: at most "
              f"{summary['one_listing_ceiling_orders_per_second']:.0f} orders/s on one listing")
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
