"""`kapok registry import` of a large Verra export, against reading the file alone.

    python -m bench.verra_import [--rows 100000] [--store sqlite|postgres|both] [--json out.json]

Writes an export of ``--rows`` rows of VCS-1067 (``testbed.verra_exports``, a tenth of them
another project's), then runs, each as a process of its own so that each wall time and peak
memory (its max RSS, from ``wait4``) is its own: the raw read (``read_export`` over the file,
the floor any import pays), the import through the command line on a new, empty store, and
the same import again (every block known: nothing written). Goal: the import under a minute
for 100,000 rows, and peak memory that does not grow with the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import drop_store, new_store, run_facts, write_json

PROJECT = "VCS-1067"


def timed(command: list[str], env: dict[str, str] | None = None) -> dict:
    """Runs ``command`` to its end; its wall time, its own peak RSS and its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True,
                                   env={**os.environ, **(env or {})})
        # wait4 reaps this child with its own resource usage (not all children's at once).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command[2:6])}... failed: {err.read()[-2000:]}")
        return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "out": out.read()}


def read_only(path: str) -> None:
    """The raw read, in this process: every row parsed and checked, nothing stored."""
    from ledger.adapters.verra_export import read_export

    with open(path, encoding="utf-8", newline="") as stream:
        rows = sum(1 for _ in read_export(stream, 1067))
    print(json.dumps({"rows": rows}))


def run_store(kind: str, path: str, workdir: str) -> dict:
    url = new_store(kind, workdir)
    env = {"KAPOK_DATABASE_URL": url}
    command = [sys.executable, "-m", "cli", "registry", "import", path, "--project", PROJECT,
               "--json"]
    try:
        first = timed(command, env)
        again = timed(command, env)
        events = _events(url)
    finally:
        drop_store(url)
    results = {}
    for name, run in (("import", first), ("reimport", again)):
        report = json.loads(run.pop("out"))
        results[name] = run | {key: report[key] for key in (
            "rows", "skipped", "blocks_new", "blocks_known", "tonnes_new", "retired_at_verra")}
    results["events_stored"] = events
    return results


def _events(url: str) -> int:
    from market.application import Marketplace

    app = Marketplace(database=url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", help="Write the summary to this file.")
    parser.add_argument("--read-only", help=argparse.SUPPRESS)  # the raw read's process
    args = parser.parse_args()
    if args.read_only:
        read_only(args.read_only)
        return

    from testbed.verra_exports import write_export

    workdir = tempfile.mkdtemp(prefix="kapok-verra-bench-")
    try:
        path = os.path.join(workdir, "export.csv")
        written = write_export(path, args.rows)
        read = timed([sys.executable, "-m", "bench.verra_import", "--read-only", path])
        read.pop("out")
        summary = {**run_facts(), "rows": args.rows, "project_rows": written.project_rows,
                   "file_mb": round(os.path.getsize(path) / 2**20, 1), "raw_read": read}
        stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
        for kind in stores:
            summary[kind] = run_store(kind, path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_json(args.json, summary)
    print(f"{args.rows:,} rows ({summary['project_rows']:,} of {PROJECT}, "
          f"{summary['file_mb']} MB): raw read {read['seconds']} s, {read['peak_rss_mb']} MB")
    for kind in stores:
        for phase in ("import", "reimport"):
            run = summary[kind][phase]
            print(f"{kind:8} {phase:8} {run['seconds']:8.2f} s  peak {run['peak_rss_mb']} MB  "
                  f"new {run['blocks_new']:,} known {run['blocks_known']:,}  "
                  f"x raw read {run['seconds'] / max(read['seconds'], 0.01):.1f}")


if __name__ == "__main__":
    main()
