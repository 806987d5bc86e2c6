"""Two checkouts of Kapok served side by side on one store, measured in alternation:

    python -m bench.serving_compare OTHER_CHECKOUT [--seconds 8] [--rounds 3] [--json FILE]

Each is ``gunicorn -c python:web.serving -w 2`` with its own code and settings, on a store of
its own seeded alike, with its own ``kapok worker`` (as ``bench.http_load`` runs one). In every round, each GET (``wrk``, 8 connections) and each
order phase (4 and 16 clients, ``bench.order_load``) runs against this checkout and then the
other, so both meet the same moment of a shared machine; the result is this checkout's
figure over the other's, per round and as the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import new_store, run_facts, write_json
from bench.http_load import _drop, order_load, wrk
from testbed.servers import ROOT, Server, server_env, start_worker, stop_worker

PAGES = ("/catalogue", "/api/v1/listings")
CLIENTS = (4, 16)


def compare(urls: dict[str, str], roots: dict[str, Path], workdir: str, seconds: float,
            rounds: int) -> dict:
    """Each checkout on a store of its own (the same demo and buyers), seeded by its own
    code and with its own ``kapok worker``: two versions' read models cannot share one
    store, and an older version may not read the topics a newer one writes."""
    seeded = {name: seeded_by(roots[name], url, max(CLIENTS)) for name, url in urls.items()}
    tokens_files = {}
    for name, (_, tokens, _) in seeded.items():
        tokens_files[name] = Path(workdir) / f"tokens-{name}.txt"
        tokens_files[name].write_text("\n".join(tokens) + "\n")
    servers, workers = {}, []
    try:
        for name, root in roots.items():
            workers.append(start_worker(server_env(urls[name]), workdir, root,
                                        f"worker-{name}"))
            servers[name] = Server("web:create_app()", server_env(urls[name]), workdir, name,
                                   "/healthz", root=root)
        figures: dict[str, dict[str, list]] = {}
        for _ in range(rounds):
            for path in PAGES:
                for name, server in servers.items():
                    run = wrk(server.base + path, seconds, 8)
                    figures.setdefault(path, {}).setdefault(name, []).append(run)
            for count in CLIENTS:
                for name, server in servers.items():
                    run = order_load(server.base, seeded[name][0], str(tokens_files[name]),
                                     count, seconds)
                    figures.setdefault(f"orders-{count}", {}).setdefault(name, []).append(run)
    finally:
        for server in servers.values():
            server.stop()
        for worker in workers:
            stop_worker(worker)
    return {phase: summarise(runs) for phase, runs in figures.items()}


def seeded_by(root: Path, url: str, clients: int) -> tuple[str, list[str], str]:
    """``bench.http_load.seed`` run by the checkout at ``root``, in a process of its own."""
    script = ("import json, sys\nfrom bench.http_load import seed\n"
              "print(json.dumps(seed(sys.argv[1], int(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", script, url, str(clients)], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True,
                          text=True, check=True)
    listing, tokens, table = json.loads(done.stdout.strip().splitlines()[-1])
    return listing, tokens, table


def summarise(runs: dict[str, list]) -> dict:
    rate = "requests_per_second" if "requests_per_second" in runs["this"][0] else \
        "orders_per_second"
    ratios = [round(a[rate] / b[rate], 3) for a, b in zip(runs["this"], runs["other"])]
    errors = "non_2xx" if rate == "requests_per_second" else "server_errors_5xx"
    return {"this": [run[rate] for run in runs["this"]],
            "other": [run[rate] for run in runs["other"]],
            "this_p99_ms": [run["p99_ms"] for run in runs["this"]],
            "other_p99_ms": [run["p99_ms"] for run in runs["other"]],
            "errors": {name: sum(run.get(errors, 0) for run in group)
                       for name, group in runs.items()},
            "ratios": ratios, "median_ratio": statistics.median(ratios)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--seconds", type=float, default=8, help="per GET and order run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    facts = run_facts()
    workdir = tempfile.mkdtemp(prefix="kapok-compare-")
    urls = {name: new_store("postgres", workdir) for name in ("this", "other")}
    try:
        results = compare(urls, {"this": ROOT, "other": args.other.resolve()}, workdir,
                          args.seconds, args.rounds)
    finally:
        for url in urls.values():
            _drop(url)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"benchmark": "serving_compare", **facts, "other": str(args.other),
               "load_average_at_end": os.getloadavg()[0], "seconds": args.seconds,
               "rounds": args.rounds, **results}
    for phase, row in results.items():
        print(f"{phase:<20} this {row['this']} other {row['other']} -> x{row['median_ratio']} "
              f"(rounds {row['ratios']}); p99 ms {row['this_p99_ms']} vs {row['other_p99_ms']};"
              f" errors {row['errors']}")
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
