"""Replay and verify of a generated history: right answers, memory bounded by pages."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

from bench.loadgen import generate_log
from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.log import AuditLog
from ledger.audit.verification import verify
from ledger.invariants import validate
from ledger.replay import replay


def comparable(rows):
    return sorted((r["account"], r["project"], r["vintage"], r["status"], r["quantity"])
                  for r in rows if r["status"] not in ("retired", "cancelled"))


def test_a_generated_history_replays_to_the_live_balances_and_verifies(ledger, tmp_path):
    stored = generate_log(ledger, 3_000)
    generate_key(tmp_path / "key.pem")
    key = SigningKey.load(tmp_path / "key.pem")
    AuditLog(ledger).follow(key)

    state = replay(ledger)
    report = verify(ledger, key.public_pem)

    assert state.events == stored >= 3_000
    assert comparable(state.balances()) == comparable(ledger.caught_up_view().balances())
    assert validate(state) == []
    assert report.ok and report.events == stored


def test_replay_memory_does_not_grow_with_the_number_of_events(sqlite_url):
    from ledger.application import Ledger

    ledger = Ledger(database=sqlite_url)
    try:
        generate_log(ledger, 4_000)

        def peak_of(until_position):
            tracemalloc.start()
            replay(ledger, until_position=until_position)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

        small, large = peak_of(1_500), peak_of(4_000)
    finally:
        ledger.close()
    # Pages of 1,000 events are streamed: more events, about the same peak (the holdings
    # grow a little as blocks fragment), never proportional to the log.
    assert large < small * 1.6, (small, large)


def test_the_audit_benchmark_runs_and_reports_every_phase(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench.audit_replay", "--events", "600",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert [row["phase"] for row in summary["results"]] == ["raw_read", "follow", "replay", "verify"]
    assert all(row["events"] == summary["events"] >= 600 for row in summary["results"])
    assert all(row["events_per_second"] > 0 and row["peak_rss_mb"] > 0 for row in summary["results"])
    assert "x raw" in done.stdout
