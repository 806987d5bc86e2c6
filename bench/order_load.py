"""The order flow's load generator, run as its own process by ``bench.http_load``:

    python -m bench.order_load --base http://127.0.0.1:PORT --listing ID --clients 4 \
        --seconds 10 --tokens-file FILE

Each client (a thread with its own bearer token) places an order of 1 t (POST /api/v1/orders)
and pays it with the offline provider (POST /api/v1/orders/<id>/pay), again and again until
the time is up; first one order each that is not counted (a warm-up), then a common start.
One connection per request (gunicorn's sync workers close after each), spoken over a plain
socket: http.client parses every response's headers with the e-mail package, about half of
this process's CPU, which on a 2-core machine is taken from the server being measured. A 409
is counted and the step is tried again (at most 5 times); a 5xx or a socket error is counted
and the order abandoned. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

from testbed.order_client import parse_response, read_all

RETRIES = 5
STARTED = "measuring"  # on stderr when the warm-up is over (see bench.http_load)
WARMUP_TIMEOUT = 120  # seconds for every client's first order


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` from 0 to 1) of ``values``, or None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


class Client(threading.Thread):
    def __init__(self, host: str, port: int, token: str, listing: str,
                 start_line: threading.Barrier, seconds: float):
        super().__init__(daemon=True)
        self.host, self.port, self.start_line, self.seconds = host, port, start_line, seconds
        self.headers = (f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                        "Content-Type: application/json\r\nConnection: close\r\n")
        self.body = json.dumps({"listing_id": listing, "tonnes": 1})
        self.latencies: list[float] = []  # seconds per completed order (create + pay)
        self.counts = {"orders": 0, "conflicts_409": 0, "retries": 0, "server_errors_5xx": 0,
                       "other_4xx": 0, "socket_errors": 0, "not_fulfilled": 0}
        self.statuses: dict[str, int] = {}
        self.warmup_failures = False

    def _post(self, path: str, body: str = "") -> tuple[int, bytes]:
        data = body.encode()
        request = (f"POST {path} HTTP/1.1\r\n{self.headers}Content-Length: {len(data)}\r\n\r\n"
                   .encode() + data)
        with socket.create_connection((self.host, self.port), timeout=30) as connection:
            connection.sendall(request)
            return parse_response(read_all(connection))

    def _step(self, path: str, body: str = "") -> dict | None:
        """One POST, tried again on a 409; the parsed body, or None if it failed."""
        for attempt in range(RETRIES):
            try:
                status, data = self._post(path, body)
            except OSError:
                self.counts["socket_errors"] += 1
                return None
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
            if status in (200, 201):
                return json.loads(data)
            if status == 409:
                self.counts["conflicts_409"] += 1
                if attempt + 1 < RETRIES:
                    self.counts["retries"] += 1
                continue
            if status >= 500:
                self.counts["server_errors_5xx"] += 1
            else:
                self.counts["other_4xx"] += 1
            return None
        return None

    def run(self) -> None:
        # One order first, not counted: the token's first use and the buyer account's first
        # read in each worker, and the pooled connections' first calls, are start-up costs,
        # not the steady state measured. Then every client starts at once.
        self._order()
        self.warmup_failures = self.counts["orders"] != 1
        self.counts = dict.fromkeys(self.counts, 0)
        self.latencies, self.statuses = [], {}
        try:
            self.start_line.wait()
        except threading.BrokenBarrierError:
            return
        deadline = time.perf_counter() + self.seconds
        while time.perf_counter() < deadline:
            self._order()

    def _order(self) -> None:
        started = time.perf_counter()
        order = self._step("/api/v1/orders", self.body)
        if order is None:
            return
        paid = self._step(f"/api/v1/orders/{order['order_id']}/pay")
        if paid is None:
            return
        if paid.get("state") != "fulfilled":
            self.counts["not_fulfilled"] += 1
            return
        self.latencies.append(time.perf_counter() - started)
        self.counts["orders"] += 1


def run_load(base: str, listing: str, tokens: list[str], clients: int, seconds: float) -> dict:
    address = urlsplit(base)
    start_line = threading.Barrier(clients + 1)
    threads = [Client(address.hostname, address.port, tokens[i % len(tokens)], listing,
                      start_line, seconds) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait(timeout=WARMUP_TIMEOUT)  # every client's first order done
    started = time.perf_counter()
    print(STARTED, file=sys.stderr, flush=True)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = [value for thread in threads for value in thread.latencies]
    totals: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for thread in threads:
        for name, value in thread.counts.items():
            totals[name] = totals.get(name, 0) + value
        for name, value in thread.statuses.items():
            statuses[name] = statuses.get(name, 0) + value

    def ms(value):
        return None if value is None else round(value * 1000, 2)

    return {"clients": clients, "seconds": round(elapsed, 2), **totals,
            "warmup_failures": sum(thread.warmup_failures for thread in threads),
            "orders_per_second": round(totals["orders"] / elapsed, 1),
            "p50_ms": ms(percentile(latencies, 0.50)), "p99_ms": ms(percentile(latencies, 0.99)),
            "mean_ms": ms(statistics.fmean(latencies)) if latencies else None,
            "statuses": statuses}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--listing", required=True)
    parser.add_argument("--tokens-file", required=True, help="bearer tokens, one a line")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args(argv)
    with open(args.tokens_file) as file:
        tokens = [line.strip() for line in file if line.strip()]
    result = run_load(args.base, args.listing, tokens, args.clients, args.seconds)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
