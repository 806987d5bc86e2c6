"""The benchmark scripts run and report well-formed numbers (tiny sizes: no timing claims)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import require_postgres


def run_bench(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Runs a benchmark with its temporary files in a folder of the test's own, and checks
    that it removed them all."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TMPDIR": str(scratch)})
    assert list(scratch.iterdir()) == [], "the benchmark left temporary files behind"
    return done


def test_the_ledger_write_benchmark_runs_and_reports_its_ratios(tmp_path):
    out = tmp_path / "writes.json"
    done = run_bench(tmp_path, "bench.ledger_writes", "--operations", "40", "--history", "300",
                     "--repeats", "5", "--json", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    writes = summary["writes"]
    assert writes["raw_pairs_per_second"] > 0 and writes["transfers_per_second"] > 0
    assert writes["transfer_ratio_to_raw"] > 0 and writes["retirement_ratio_to_raw"] > 0
    assert summary["block_size"]["ratio"] > 0 and summary["history"]["past_sales"] == 300
    assert "ratio" in done.stdout


@pytest.mark.postgres
def test_on_postgresql_the_market_sales_benchmark_also_times_the_turns(tmp_path):
    require_postgres()
    out = tmp_path / "sales.json"
    done = run_bench(tmp_path, "bench.market_sales", "--store", "postgres", "--history", "5",
                     "--repeats", "5", "--json", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["place_turn_ms"] > 0 and summary["pay_turn_ms"] > 0
    assert summary["one_listing_ceiling_orders_per_second"] == pytest.approx(
        1000 / (summary["place_turn_ms"] + summary["pay_turn_ms"]), rel=0.01)
    assert "turns held" in done.stdout


def test_the_market_sales_benchmark_runs_and_reports_its_ratios(tmp_path):
    out = tmp_path / "sales.json"
    done = run_bench(tmp_path, "bench.market_sales", "--history", "20", "--repeats", "5",
                     "--json", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["past_sales"] == 20 and summary["events_in_old_store"] > 20
    assert summary["warm_ratio"] > 0 and summary["cold_ratio"] > 0
    assert all(summary[f"{age}_{kind}_ms"] > 0 for age in ("old", "new") for kind in ("warm", "cold"))
    assert "ratio" in done.stdout


@pytest.mark.postgres
def test_the_verra_import_benchmark_imports_and_imports_again_on_both_stores(tmp_path):
    require_postgres()
    out = tmp_path / "verra.json"
    done = run_bench(tmp_path, "bench.verra_import", "--rows", "300", "--json", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["raw_read"]["seconds"] > 0 and summary["raw_read"]["peak_rss_mb"] > 0
    for store in ("sqlite", "postgres"):
        first, again = summary[store]["import"], summary[store]["reimport"]
        assert first["blocks_new"] + first["retired_at_verra"] == summary["project_rows"]
        assert (again["blocks_new"], again["blocks_known"]) == (0, summary["project_rows"])
        assert first["seconds"] > 0 and first["peak_rss_mb"] > 0 and again["peak_rss_mb"] > 0
    assert "reimport" in done.stdout
