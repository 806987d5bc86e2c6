"""Audit replay and verify against the raw eventsourcing read of the same store, in one run.

    python -m bench.audit_replay --events 1000000 [--store sqlite|postgres] [--json out.json]

Builds (or reuses) a store of N events, then times, each in its own process so that each
peak memory is its own: the raw read (select_notifications + decode, the stack's limit), the
audit follower (hashing into the Merkle tree), ``replay`` and ``verify``. Prints a table of
events per second, the ratio to the raw read, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import drop_store, new_store, run_facts, write_json

PHASES = ("raw_read", "follow", "replay", "verify")


def run_phase(phase: str, url: str, key_file: str) -> dict:
    from ledger.application import Ledger
    from ledger.audit.keys import SigningKey
    from ledger.audit.log import AuditLog
    from ledger.audit.verification import verify
    from ledger.read.replay import replay, stored_notifications

    ledger = Ledger(database=url)
    started = time.perf_counter()
    if phase == "raw_read":
        events = sum(1 for n in stored_notifications(ledger) if ledger.mapper.to_domain_event(n))
    elif phase == "follow":
        head = AuditLog(ledger).follow(SigningKey.load(key_file))
        events = head.tree_size
    elif phase == "replay":
        events = replay(ledger).events
    else:
        report = verify(ledger, SigningKey.load(key_file).public_pem)
        if not report.ok:
            raise SystemExit(f"verify failed: {report.problems[:3]}")
        events = report.events
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ledger.close()
    return {"phase": phase, "events": events, "seconds": round(seconds, 3),
            "events_per_second": round(events / seconds) if seconds else None,
            "peak_rss_mb": round(peak_mb, 1)}


def build_store(url: str, events: int) -> int:
    from testbed.loadgen import generate_log
    from ledger.application import Ledger

    ledger = Ledger(database=url)
    try:
        if (ledger.recorder.max_notification_id() or 0) >= events:
            return ledger.recorder.max_notification_id()
        tty = sys.stderr.isatty()
        return generate_log(ledger, events, progress=lambda n: tty and print(
            f"\r  generated {n:,} events", end="", file=sys.stderr, flush=True))
    finally:
        ledger.close()
        print(file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--url", help="Reuse an existing store instead of building one.")
    parser.add_argument("--json", dest="json_path", help="Write the results as JSON here.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the store it built (its URL is printed) to rerun phases on.")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # a child process measuring one phase
        print(json.dumps(run_phase(args.phase, args.url, args.key)))
        return 0

    from ledger.audit.keys import generate_key

    workdir = tempfile.mkdtemp(prefix="kapok-bench-")
    url = args.url or new_store(args.store, workdir)
    key_file = os.path.join(workdir, "key.pem")
    try:
        generate_key(key_file)
        stored = build_store(url, args.events)
        results = []
        for phase in PHASES:
            done = subprocess.run([sys.executable, "-m", "bench.audit_replay", "--phase", phase,
                                   "--url", url, "--key", key_file], capture_output=True,
                                  text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if args.keep:
            print(f"kept the store: --url {url} --key {key_file}", file=sys.stderr)
        else:  # a million events is a gigabyte: do not leave it behind
            if not args.url:
                drop_store(url)
            shutil.rmtree(workdir, ignore_errors=True)
    raw = results[0]["events_per_second"]
    for row in results:
        row["ratio_to_raw"] = round(row["events_per_second"] / raw, 3) if raw else None
    summary = {"benchmark": "audit_replay", "store": args.store, "events": stored,
               **run_facts(), "results": results}
    print(f"{'phase':<10} {'events':>10} {'seconds':>9} {'events/s':>10} {'x raw':>7} {'peak MB':>8}")
    for row in results:
        print(f"{row['phase']:<10} {row['events']:>10,} {row['seconds']:>9.2f} "
              f"{row['events_per_second']:>10,} {row['ratio_to_raw']:>7.2f} {row['peak_rss_mb']:>8.1f}")
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
