"""HTTP throughput and latency of the web app under gunicorn, against a bare Flask app.

    python -m bench.http_load [--seconds 15] [--order-seconds 15] [--rounds 3]
                              [--connections 8] [--json FILE] [--quick] [--profile DIR]

A fresh PostgreSQL database is seeded with the demo (ledger, market, logins) and one buyer
organisation per order client; ``gunicorn -c python:web.serving -w 2`` (Kapok's settings, as
in the Procfile) serves Kapok (``web:create_app()``) and, with the same settings, the
baseline ``bench.bare_app`` (a constant small page). The load comes from other processes on
127.0.0.1:

4. GET /catalogue and GET /api/v1/listings with ``wrk`` (Debian package ``wrk``), beside the
   bare page measured before and after them (their mean is the baseline).
5. Orders: each client places an order of 1 t (POST /api/v1/orders) and pays it with the
   offline provider (POST /api/v1/orders/<id>/pay), with 1, 4 and 16 concurrent clients
   (``bench.order_load``, a separate process), beside the same two POSTs to the bare app.
   Each order phase also reports where the CPU went: milliseconds of CPU per order in the
   Kapok workers and in PostgreSQL's processes, and how busy the whole machine was. It runs
   ``--rounds`` times, alternating with the bare flow, and reports the median round beside
   every round's figures: on these shared machines the same code gives rounds a fifth apart.

Goals (issue "Performance"): catalogue >= 500 req/s, orders >= 200/s, p99 < 100 ms. Every
server and the database are removed at the end, also on failure. ``--profile DIR`` records
each gunicorn worker with py-spy during the Kapok phases (collapsed stacks, one file each).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import drop_store, new_store, run_facts, write_json
from bench.order_load import STARTED

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"catalogue_rps": 500, "orders_per_second": 200, "p99_ms": 100}
ORDER_LISTING = "demo:listing:VCS-1067:2021"  # 50,000 t on offer in the demo
CLIENTS = (1, 4, 16)
BENCH_PASSWORD = "bench-password-not-secret"


# --- the store -----------------------------------------------------------------------------


def seed(url: str, clients: int) -> tuple[str, list[str], str]:
    """The demo (as ``kapok demo`` and the web tests seed it), plus one buyer organisation
    and bearer token per order client. Returns the listing to order from, the tokens and
    the name of the market's event table."""
    from ledger.demo import demo_steps
    from market.application import Marketplace
    from market.demo import market_demo_steps
    from market.domain.listings import listing_id_for
    from web.demo import seed_people
    from identity.application import Identity

    market = Marketplace(database=url)
    for _label, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    market.caught_up_view()
    table = market.recorder.events_table_name
    market.close()
    identity = Identity(url)
    seed_people(identity)
    tokens = []
    for i in range(clients):
        email = f"buyer-{i:02d}@bench.example"
        identity.sign_up(f"Bench Buyer {i:02d}", f"Bench buyer {i:02d}", email, BENCH_PASSWORD)
        tokens.append(identity.issue_token(email, "bench"))
    identity.close()
    return str(listing_id_for(ORDER_LISTING)), tokens, table


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """``gunicorn -w 2`` with Kapok's settings (``web.serving``) on a free loopback port, in a
    process group of its own; the code of ``root`` (another checkout, to compare two)."""

    def __init__(self, app: str, env: dict, workdir: str, name: str, ready_path: str,
                 root: Path = ROOT):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(workdir) / f"{name}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:web.serving", "-w", "2", "-b",
             f"127.0.0.1:{self.port}", app],
            cwd=root, env={**env, "PYTHONPATH": str(root)}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent)
        try:
            self._wait(ready_path)
        except BaseException as error:
            self.stop()
            tail = Path(self.log.name).read_text()[-3000:]
            raise RuntimeError(f"{name}: {error}\n--- gunicorn's log:\n{tail}") from None

    def _wait(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode})")
            try:
                with urllib.request.urlopen(self.base + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout} s")

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the gunicorn master)."""
        return sorted(pid for pid in _pids()
                      if (fields := _proc_stat(pid)) and int(fields[1]) == self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        self.log.close()


def start_worker(env: dict, workdir: str, root: Path = ROOT,
                 name: str = "worker") -> subprocess.Popen:
    """``kapok worker`` beside the server, as the Procfile runs it (the code of ``root``):
    the read model's only writer, which every request that saved waits for."""
    with open(Path(workdir) / f"{name}.log", "w") as log:  # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=root,
                                env={**env, "PYTHONPATH": str(root)}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)


def stop_worker(worker: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(5)


# --- load ----------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return round(float(number) * _UNITS[unit], 2)


def wrk(url: str, seconds: float, connections: int) -> dict:
    """``wrk`` against one URL: requests per second, p50/p99 latency, errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            timeout=seconds + 60).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                              output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "requests_per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), 1),
        "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
        "connections": connections,
    }


def event_ids(url: str, table: str) -> tuple[int, int]:
    """(highest notification id, events stored) of Kapok's event table. A save refused on a
    conflict (the server retries it) has used ids of the sequence for nothing: the gap
    between the two, over a phase, counts at least one id per conflict the clients never
    see."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(sql.SQL(
            "SELECT COALESCE(MAX(notification_id), 0), COUNT(*) FROM {}").format(
            sql.Identifier(table))).fetchone()
    return int(row[0]), int(row[1])


def _pids() -> list[int]:
    """Every process on this machine (Linux /proc)."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _proc_file(pid: int, name: str) -> str | None:
    """/proc/<pid>/<name>, or None for a process gone meanwhile."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    text = _proc_file(pid, "stat")
    return text.rsplit(")", 1)[1].split() if text else None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (0 for one gone)."""
    fields = [stat for pid in pids if (stat := _proc_stat(pid))]
    return sum(int(f[11]) + int(f[12]) for f in fields) / os.sysconf("SC_CLK_TCK")  # utime, stime


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its backends do the queries)."""
    return [pid for pid in _pids()
            if (_proc_file(pid, "comm") or "").strip() in ("postgres", "postmaster")]


def machine_ticks() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) CPU ticks of the machine so far (Linux /proc/stat). Steal
    is time the hypervisor gave this virtual machine's cores to another guest."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4], values[7]  # guest time is within user


class CpuUse:
    """Where the CPU went during a phase: the Kapok workers, PostgreSQL, the whole machine."""

    def __init__(self, workers: list[int]):
        self.workers, self.postgres = workers, postgres_pids()
        self.start = (cpu_seconds(self.workers), cpu_seconds(self.postgres), machine_ticks())

    def per(self, count: int) -> dict:
        workers, postgres, (all_ticks, idle_ticks, steal_ticks) = (
            cpu_seconds(self.workers), cpu_seconds(self.postgres), machine_ticks())
        spent = all_ticks - self.start[2][0]
        return {
            "worker_cpu_ms_per_order": round(1000 * (workers - self.start[0]) / count, 2)
            if count else None,
            "postgres_cpu_ms_per_order": round(1000 * (postgres - self.start[1]) / count, 2)
            if count else None,
            "machine_busy_percent": round(
                100 * (1 - (idle_ticks - self.start[2][1]) / spent), 1) if spent else None,
            "machine_steal_percent": round(
                100 * (steal_ticks - self.start[2][2]) / spent, 1) if spent else None,
        }


def order_load(base: str, listing: str, tokens_file: str, clients: int, seconds: float,
               on_start=lambda: None) -> dict:
    """The order flow from its own process (``bench.order_load``). ``on_start`` is called
    when its clients have made their warm-up orders and the measured run begins."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.order_load", "--base", base, "--listing", listing,
         "--tokens-file", tokens_file, "--clients", str(clients), "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    try:
        for line in process.stderr:  # the load generator says when it starts measuring
            if line.strip() == STARTED:
                on_start()
                break
            said.append(line)
        stdout, stderr = process.communicate(timeout=seconds + 120)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    if process.returncode:
        told = ("".join(said) + stderr)[-2000:]
        raise RuntimeError(f"the load generator failed ({process.returncode}):\n{told}")
    return json.loads(stdout)


class Profiler:
    """py-spy on every worker of a server while a phase runs (collapsed stacks)."""

    def __init__(self, directory: str | None):
        self.directory = Path(directory) if directory else None
        self.py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.running: list[subprocess.Popen] = []

    def start(self, phase: str, server: Server, seconds: float) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for pid in server.workers():
            self.running.append(subprocess.Popen(
                [self.py_spy, "record", "--format", "raw", "--nonblocking", "--rate", "200",
                 "--duration", str(max(1, round(seconds))), "--pid", str(pid),
                 "-o", str(self.directory / f"{phase}-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def finish(self) -> None:
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.running = []

    def summary(self, phase: str, top: int = 12) -> list[tuple[str, float]]:
        """The heaviest frames of Kapok's own code (ledger/, market/, web/), inclusive,
        as a share of the workers' samples in that phase."""
        counts: collections.Counter = collections.Counter()
        total = 0
        for path in sorted(self.directory.glob(f"{phase}-*.txt")) if self.directory else []:
            for line in path.read_text().splitlines():
                stack, _, samples = line.rpartition(" ")
                if not samples.isdigit():
                    continue
                total += int(samples)
                for frame in set(stack.split(";")):
                    if re.search(r"\((ledger|market|web)/", frame):
                        counts[frame] += int(samples)
        return [(frame, round(100 * n / total, 1)) for frame, n in counts.most_common(top)]


# --- the run -------------------------------------------------------------------------------


def server_env(url: str) -> dict:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("KAPOK_STRIPE_")}  # the offline provider, always
    env.update(KAPOK_DATABASE_URL=url, KAPOK_SECRET_KEY="bench-secret-not-for-production",
               KAPOK_ENV="development")
    return env


def median_round(runs: list[dict]) -> dict:
    """The round with the median throughput (the lower middle one of an even number), with
    every round's throughput and ratio beside it: on a shared machine one round can be a
    fifth faster or slower than the next, for the same code."""
    middle = sorted(runs, key=lambda run: run["orders_per_second"])[(len(runs) - 1) // 2]
    return {**middle, "rounds": len(runs),
            "rounds_orders_per_second": [run["orders_per_second"] for run in runs],
            "rounds_ratio_to_bare_flow": [run["ratio_to_bare_flow"] for run in runs],
            "rounds_p99_ms": [run["p99_ms"] for run in runs],
            "rounds_server_errors_5xx": sum(run["server_errors_5xx"] for run in runs),
            "rounds_not_fulfilled": sum(run["not_fulfilled"] for run in runs),
            "rounds_warmup_failures": sum(run["warmup_failures"] for run in runs)}


def measure(url: str, workdir: str, seconds: float, order_seconds: float, connections: int,
            clients: tuple[int, ...], profiler: Profiler, rounds: int = 1) -> dict:
    listing, tokens, table = seed(url, max(clients, default=1))
    tokens_file = Path(workdir) / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    servers = []
    worker = start_worker(server_env(url), workdir)
    try:
        bare = Server("bench.bare_app:create_app()", server_env(url), workdir, "bare", "/")
        servers.append(bare)
        kapok, boot_failures = None, []
        while kapok is None:
            try:
                kapok = Server("web:create_app()", server_env(url), workdir, "kapok", "/healthz")
            except RuntimeError as error:  # recorded, not hidden: see "kapok_boot_failures"
                boot_failures.append(str(error).splitlines()[0] + " | " + str(error).strip()
                                     .splitlines()[-1])
                if len(boot_failures) == 3:
                    raise
        servers.append(kapok)
        for path in ("/catalogue", "/api/v1/listings"):  # warm both workers' caches
            for _ in range(4):
                urllib.request.urlopen(kapok.base + path, timeout=30).read()
        gets = {"bare_before": wrk(bare.base + "/", seconds, connections)}
        for name, path in (("catalogue", "/catalogue"), ("listings", "/api/v1/listings")):
            profiler.start(name, kapok, seconds)
            gets[name] = wrk(kapok.base + path, seconds, connections)
            profiler.finish()
        gets["bare_after"] = wrk(bare.base + "/", seconds, connections)
        gets["bare_json"] = wrk(bare.base + "/json", seconds, connections)
        bare_rps = (gets["bare_before"]["requests_per_second"]
                    + gets["bare_after"]["requests_per_second"]) / 2
        for name in ("catalogue", "listings"):
            gets[name]["ratio_to_bare"] = round(gets[name]["requests_per_second"] / bare_rps, 3)
        orders = {}
        for count in clients:
            runs = []
            for number in range(rounds):  # bare, Kapok, bare, Kapok, ...: the same weather
                bare_flow = order_load(bare.base, listing, str(tokens_file), count,
                                       order_seconds)
                measured: dict = {}

                def start(number=number, count=count, measured=measured):
                    # After the warm-up orders: what they cost is not counted.
                    if number == 0:
                        profiler.start(f"orders-{count}", kapok, order_seconds)
                    measured["ids"] = event_ids(url, table)
                    measured["cpu"] = CpuUse(kapok.workers())
                    measured["projection_cpu"] = CpuUse([worker.pid])

                kapok_flow = order_load(kapok.base, listing, str(tokens_file), count,
                                        order_seconds, on_start=start)
                kapok_flow.update(measured["cpu"].per(kapok_flow["orders"]))
                kapok_flow["projection_cpu_ms_per_order"] = measured["projection_cpu"].per(
                    kapok_flow["orders"])["worker_cpu_ms_per_order"]
                ids_after, stored_after = event_ids(url, table)
                profiler.finish()
                ids_before, stored_before = measured["ids"]
                kapok_flow["events_saved"] = stored_after - stored_before
                kapok_flow["ids_of_rolled_back_saves"] = (
                    ids_after - ids_before - (stored_after - stored_before))
                kapok_flow["bare_flow_per_second"] = bare_flow["orders_per_second"]
                kapok_flow["bare_flow_p99_ms"] = bare_flow["p99_ms"]
                kapok_flow["ratio_to_bare_flow"] = round(
                    kapok_flow["orders_per_second"] / bare_flow["orders_per_second"], 3)
                kapok_flow["ratio_to_bare_get"] = round(
                    kapok_flow["orders_per_second"] / bare_rps, 4)
                runs.append(kapok_flow)
            orders[str(count)] = median_round(runs)
        position = json.loads(urllib.request.urlopen(kapok.base + "/healthz", timeout=30).read())
    finally:
        for server in servers:
            server.stop()
        stop_worker(worker)
    return {"kapok_boot_failures": boot_failures,
            "bare_requests_per_second": round(bare_rps, 1), "gets": gets, "orders": orders,
            "events_in_store_at_end": position.get("position")}


def verdict(summary: dict) -> dict:
    gets, orders = summary["gets"], summary["orders"]
    best_orders = max((row["orders_per_second"] for row in orders.values()), default=0)
    p99s = [gets["catalogue"]["p99_ms"], gets["listings"]["p99_ms"],
            *[row["p99_ms"] for row in orders.values() if row["p99_ms"] is not None]]
    return {
        "catalogue_at_least_500_rps": gets["catalogue"]["requests_per_second"] >= GOALS["catalogue_rps"],
        "orders_at_least_200_per_second": best_orders >= GOALS["orders_per_second"],
        "p99_under_100_ms": max(p99s) < GOALS["p99_ms"],
        "no_5xx": all(row["rounds_server_errors_5xx"] == 0 for row in orders.values())
        and all(gets[name]["non_2xx"] == 0 for name in ("catalogue", "listings")),
    }


def print_table(summary: dict) -> None:
    gets, orders, bare = summary["gets"], summary["orders"], summary["bare_requests_per_second"]
    print(f"load average at start {summary['load_average_at_start']:.2f}, at end "
          f"{summary['load_average_at_end']:.2f}; wrk -c{gets['catalogue']['connections']}")
    print(f"{'GET':<34} {'req/s':>8} {'x bare':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, label in (("bare_before", "bare page (before)"), ("bare_after", "bare page (after)"),
                        ("bare_json", "bare JSON"), ("catalogue", "/catalogue"),
                        ("listings", "/api/v1/listings")):
        row = gets[name]
        ratio = row.get("ratio_to_bare", row["requests_per_second"] / bare)
        print(f"{label:<34} {row['requests_per_second']:>8,.0f} {ratio:>7.3f} "
              f"{row['p50_ms']:>8} {row['p99_ms']:>8} {row['non_2xx']:>8}")
    print(f"{'orders (create + pay)':<24} {'orders/s':>9} {'x bare flow':>11} {'x bare GET':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'409s':>5} {'retries':>7} {'5xx':>4} {'rolled back ids':>15}"
          f" {'CPU ms/order: workers':>21} {'postgres':>8} {'busy %':>6} {'steal %':>7}")
    for count, row in orders.items():
        label = count + " client(s)" + (" *" if row["rounds"] > 1 else "")
        print(f"{label:<24} {row['orders_per_second']:>9,.1f} "
              f"{row['ratio_to_bare_flow']:>11.3f} {row['ratio_to_bare_get']:>10.4f} "
              f"{row['p50_ms']!s:>7} {row['p99_ms']!s:>7} {row['conflicts_409']:>5} "
              f"{row['retries']:>7} {row['server_errors_5xx']:>4} "
              f"{row['ids_of_rolled_back_saves']:>15} {row['worker_cpu_ms_per_order']!s:>21} "
              f"{row['postgres_cpu_ms_per_order']!s:>8} {row['machine_busy_percent']!s:>6} "
              f"{row['machine_steal_percent']!s:>7}")
    if any(row["rounds"] > 1 for row in orders.values()):
        print("* the median of alternating rounds (bare, Kapok, ...); every round's orders/s "
              "and x bare flow:")
        for count, row in orders.items():
            print(f"  {count + ' client(s)':<14} " + "  ".join(
                f"{rate:,.1f} ({ratio:.3f})" for rate, ratio in
                zip(row["rounds_orders_per_second"], row["rounds_ratio_to_bare_flow"])))
    goals = summary["goals_met"]
    print("goals: " + ", ".join(f"{name} {'MET' if met else 'NOT met'}" for name, met in goals.items()))


def _drop(url: str, attempts: int = 20) -> None:
    """Drops the run's database, waiting out a server full of other clients' connections."""
    import psycopg

    for attempt in range(attempts):
        try:
            drop_store(url)
            return
        except psycopg.OperationalError:
            if attempt + 1 == attempts:
                raise
            time.sleep(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="per wrk run")
    parser.add_argument("--order-seconds", type=float, default=15, help="per order run")
    parser.add_argument("--connections", type=int, default=8, help="wrk's open connections")
    parser.add_argument("--rounds", type=int, default=3,
                        help="order runs per client count, alternating with the bare flow's; "
                             "the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="a few seconds, tiny sizes")
    parser.add_argument("--no-orders", action="store_true", help="the GET endpoints only")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the workers into DIR")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    seconds, order_seconds, clients, rounds = args.seconds, args.order_seconds, CLIENTS, args.rounds
    if args.quick:
        seconds, order_seconds, clients, rounds = 1, 1, (1, 4), min(rounds, 2)
    if args.no_orders:
        clients = ()

    # A SIGTERM (a CI timeout, say) unwinds like Ctrl-C: servers stopped, database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    facts = run_facts()
    workdir = tempfile.mkdtemp(prefix="kapok-http-")
    profiler = Profiler(args.profile)
    url = new_store("postgres", workdir)
    try:
        results = measure(url, workdir, seconds, order_seconds, args.connections, clients,
                          profiler, rounds)
    finally:
        _drop(url)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"benchmark": "http_load", "store": "postgres", "quick": args.quick, **facts,
               "database": url.rsplit("/", 1)[1],  # created for this run, dropped already
               "load_average_at_end": os.getloadavg()[0],
               "servers": "gunicorn -c python:web.serving -w 2 (threaded workers), Kapok and "
                          "bench.bare_app",
               "seconds_per_get_run": seconds, "seconds_per_order_run": order_seconds,
               "order_rounds": rounds,
               **results}
    summary["goals"] = {"catalogue_rps": ">= 500", "orders_per_second": ">= 200",
                        "p99_ms": "< 100"}
    summary["goals_met"] = verdict(summary)
    if args.profile:
        phases = ["catalogue", "listings", *[f"orders-{count}" for count in clients]]
        summary["profile"] = {phase: profiler.summary(phase) for phase in phases}
    print_table(summary)
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
