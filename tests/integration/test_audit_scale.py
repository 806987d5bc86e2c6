"""Replay and verify of a generated history: right answers, memory bounded by pages."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

from testbed.loadgen import generate_log
from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.log import AuditLog
from ledger.audit.verification import verify
from ledger.audit.invariants import validate
from ledger.read.replay import replay, stored_notifications


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


def test_replay_streams_the_log_instead_of_holding_it(sqlite_url):
    from ledger.application import Ledger

    ledger = Ledger(database=sqlite_url)
    try:
        generate_log(ledger, 6_000)

        def peak_of(work):
            tracemalloc.start()
            work()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

        replaying = peak_of(lambda: replay(ledger))
        holding_every_event = peak_of(lambda: [ledger.mapper.to_domain_event(n)
                                               for n in stored_notifications(ledger)])
    finally:
        ledger.close()
    # Replay keeps the holdings (which grow with blocks, not events) and one page of 1,000
    # events; holding the whole log would take several times more.
    assert replaying < holding_every_event / 2, (replaying, holding_every_event)


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
