"""The HTTP load benchmark (bench/http_load.py) runs in its quick mode and reports well-formed
numbers, and leaves no server or database behind. No timing is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import IN_CI, POSTGRES_ADMIN_DSN, require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_the_http_load_benchmark_runs_and_reports_well_formed_numbers(tmp_path):
    require_postgres()
    if shutil.which("wrk") is None:
        message = "wrk is not installed (apt-get install wrk; make test installs it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    out = tmp_path / "http.json"
    done = subprocess.Popen([sys.executable, "-m", "bench.http_load", "--quick", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = done.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        done.terminate()  # the benchmark stops its servers and drops its database
        stdout, stderr = done.communicate(timeout=60)
        pytest.fail(f"the quick benchmark took over 300 s:\n{stderr[-3000:]}")
    assert done.returncode == 0, stderr[-3000:]
    summary = json.loads(out.read_text())

    assert summary["quick"] is True and summary["bare_requests_per_second"] > 0
    assert summary["cpu"].strip()  # runs on different hosts are compared by it
    for name in ("bare_before", "bare_after", "bare_json", "catalogue", "listings"):
        row = summary["gets"][name]
        assert row["requests"] > 0 and row["requests_per_second"] > 0, name
        assert 0 < row["p50_ms"] <= row["p99_ms"], name
    for name in ("catalogue", "listings"):
        assert summary["gets"][name]["ratio_to_bare"] > 0
        assert summary["gets"][name]["non_2xx"] == 0
    assert set(summary["orders"]) == {"1", "4"}
    for row in summary["orders"].values():
        assert row["server_errors_5xx"] == 0 and row["not_fulfilled"] == 0
        assert row["orders"] >= 0 and row["bare_flow_per_second"] > 0
        assert row["orders_per_second"] >= 0 and row["ratio_to_bare_flow"] >= 0
        assert 0 <= row["machine_busy_percent"] <= 100
        assert 0 <= row["machine_steal_percent"] <= row["machine_busy_percent"]
        assert row["rounds"] == 2 == len(row["rounds_orders_per_second"])  # --quick: two
        assert row["orders_per_second"] == sorted(row["rounds_orders_per_second"])[0]  # median
        assert row["rounds_server_errors_5xx"] == 0 and row["rounds_not_fulfilled"] == 0
        assert row["rounds_warmup_failures"] == 0
        if row["orders"]:  # where the CPU went, per order
            assert row["worker_cpu_ms_per_order"] > 0 and row["postgres_cpu_ms_per_order"] >= 0
    assert set(summary["goals_met"]) == {"catalogue_at_least_500_rps",
                                         "orders_at_least_200_per_second",
                                         "p99_under_100_ms", "no_5xx"}
    assert "x bare" in stdout and "orders/s" in stdout

    import psycopg  # the benchmark's database is gone

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        left = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (summary["database"],)).fetchall()
    assert left == []
