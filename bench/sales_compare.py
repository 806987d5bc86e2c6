"""Two checkouts' market sales measured in close alternation, in one process each:

    python -m bench.sales_compare OTHER_CHECKOUT [--store postgres] [--pairs 200] [--batch 10]

Each checkout runs in a process of its own (``PYTHONPATH`` at it, this checkout's
interpreter) on a fresh demo store of its own, warmed by 50 sales. Then, ``--pairs`` times,
each in turn (which goes first alternates) makes a batch of ``--batch`` warm sales, as
``bench.market_sales`` makes them (place an order of 1 t and pay it offline); so both meet
the same moment of a shared machine, a batch apart. The result is this checkout's figure over
the other's for each pair of batches (the median wall time of a sale, and the process's CPU
time per sale), and the median and quartiles of those ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import run_facts, write_json

ROOT = Path(__file__).resolve().parents[1]

# Run in each checkout: its own bench.market_sales, so each sells with its own code.
_SELLER = r"""
import json, statistics, sys, tempfile, time
from bench.common import drop_store, new_store
from bench.market_sales import demo_market, listing_of, sell
url = new_store(sys.argv[1], tempfile.mkdtemp(prefix="kapok-bench-"))
try:
    market = demo_market(url)
    listing = listing_of(market)
    for _ in range(50):
        sell(market, listing)
    print("ready", flush=True)
    for line in sys.stdin:
        if not int(line):
            break
        walls, cpu = [], time.process_time()
        for _ in range(int(line)):
            started = time.perf_counter()
            sell(market, listing)
            walls.append(time.perf_counter() - started)
        print(json.dumps({"wall_ms": statistics.median(walls) * 1000,
                          "cpu_ms": (time.process_time() - cpu) * 1000 / int(line)}),
              flush=True)
    market.close()
finally:
    drop_store(url)
"""


def compare(roots: dict[str, Path], store: str, pairs: int, batch: int) -> dict:
    sellers = {name: subprocess.Popen(
        [sys.executable, "-c", _SELLER, store], cwd=root, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE) for name, root in roots.items()}
    batches: dict[str, list[dict]] = {name: [] for name in roots}
    try:
        for seller in sellers.values():
            if seller.stdout.readline().strip() != "ready":
                raise RuntimeError("a checkout could not set up its store")
        for pair in range(pairs):
            for name in (("new", "old") if pair % 2 else ("old", "new")):
                sellers[name].stdin.write(f"{batch}\n")
                sellers[name].stdin.flush()
                batches[name].append(json.loads(sellers[name].stdout.readline()))
    finally:
        for seller in sellers.values():
            if seller.poll() is None:
                seller.stdin.write("0\n")
                seller.stdin.flush()
            seller.wait()
    summary = {}
    for figure in ("wall_ms", "cpu_ms"):
        ratios = [new[figure] / old[figure] for old, new in zip(batches["old"], batches["new"])]
        quartiles = statistics.quantiles(ratios, n=4)
        summary[figure] = {
            "old_median": round(statistics.median(b[figure] for b in batches["old"]), 3),
            "new_median": round(statistics.median(b[figure] for b in batches["new"]), 3),
            "ratio_median": round(statistics.median(ratios), 3),
            "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)]}
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="the checkout to compare this one with")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    facts = run_facts()
    summary = compare({"old": Path(args.other).resolve(), "new": ROOT}, args.store,
                      args.pairs, args.batch)
    print(f"store: {args.store}; this checkout over {args.other}, {args.pairs} pairs of "
          f"{args.batch} warm sales")
    for figure, name in (("wall_ms", "wall time of a sale (median)"),
                         ("cpu_ms", "CPU time per sale")):
        found = summary[figure]
        print(f"  {name}: {found['new_median']:.2f} vs {found['old_median']:.2f} ms, ratio "
              f"{found['ratio_median']:.3f} (quartiles {found['ratio_quartiles'][0]:.3f}-"
              f"{found['ratio_quartiles'][1]:.3f})")
    write_json(args.json_path, {"benchmark": "sales_compare", "store": args.store,
                                "other": args.other, "pairs": args.pairs, "batch": args.batch,
                                **facts, **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
