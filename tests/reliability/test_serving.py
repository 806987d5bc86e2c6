"""gunicorn with Kapok's settings (web.serving): slow, idle and lingering clients do not starve
the others, a response to a request whose body was left unread still arrives whole, and a
request line too long is refused in the API's own JSON."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testbed.order_client import read_all
from testbed.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_LINGER = 2.0  # seconds gunicorn's close_graceful waits for the client's FIN

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def one_worker(*settings: str):
    """One sync worker serving the benchmark's bare app, so that a held worker shows."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *settings, "-w", "1", "-b", f"127.0.0.1:{port}",
         "testbed.bare_app:create_app()"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        time.sleep(0.5)  # the worker (not only the master's socket) is up
        yield port
    finally:
        process.terminate()
        process.wait(15)


def request(port: int, raw: bytes) -> tuple[socket.socket, bytes]:
    """Sends ``raw``; returns the open connection and the whole response (read to the
    server's half-close)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        connection.sendall(raw)
        response = read_all(connection)
    except BaseException:
        connection.close()
        raise
    return connection, response


GET = b"GET / HTTP/1.1\r\nHost: kapok\r\nConnection: close\r\n\r\n"


def seconds_for_the_next_client_while_one_stays_open(port: int) -> float:
    held, first = request(port, GET)
    try:
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        other, second = request(port, GET)
        other.close()
        assert second.startswith(b"HTTP/1.1 200")
        return time.monotonic() - started
    finally:
        held.close()


def test_a_client_that_does_not_close_holds_gunicorns_own_sync_worker():
    # The behaviour Kapok's worker changes, shown on gunicorn's own: the next client waits.
    with one_worker() as port:
        assert seconds_for_the_next_client_while_one_stays_open(port) >= GUNICORN_LINGER - 0.1


def test_with_kapoks_settings_the_next_client_is_served_at_once():
    with one_worker("-c", "python:web.serving") as port:
        assert seconds_for_the_next_client_while_one_stays_open(port) < GUNICORN_LINGER / 2


def test_a_response_to_a_request_whose_body_was_not_read_arrives_whole():
    # The bare app answers an order without reading its body: the worker must still drain
    # before closing, or the unread bytes would turn its close into a reset.
    body = b"x" * 300_000
    with one_worker("-c", "python:web.serving") as port:
        connection, response = request(port, (
            b"POST /api/v1/orders HTTP/1.1\r\nHost: kapok\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body)
        connection.close()
    assert response.startswith(b"HTTP/1.1 201")
    assert response.endswith(b'"state":"reserved"}\n')


def local_env(tmp_path) -> dict[str, str]:
    """Kapok on a SQLite store of its own, with a home directory of its own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**{name: value for name, value in os.environ.items() if name != "XDG_RUNTIME_DIR"},
            "HOME": str(home), "KAPOK_DATABASE_URL": f"sqlite:///{tmp_path}/kapok.db",
            "KAPOK_SECRET_KEY_FILE": str(tmp_path / "secret-key"),
            "KAPOK_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem")}


def wait_for_health(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert json.loads(r.read())["status"] == "ok"
            return
        except OSError:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.3)


@contextlib.contextmanager
def kapok_under_gunicorn(tmp_path):
    """Kapok as the Procfile runs it (two workers), on SQLite."""
    port = free_port()
    env = {**local_env(tmp_path), "KAPOK_ENV": "development", "KAPOK_SECRET_KEY": "x" * 32}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:web.serving", "-w", "2", "-b",
         f"127.0.0.1:{port}", "web:create_app()"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_health(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(15)


def slow_header_client(port: int, stop: threading.Event) -> None:
    """Sends a request's head one byte a second and never ends it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        head = b"GET /healthz HTTP/1.1\r\nHost: kapok\r\nX-Slow: " + b"a" * 10_000
        for byte in head:
            if stop.wait(1.0):
                return
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return


SLOW_CLIENTS, IDLE_CLIENTS, PROBES, PROBE_BOUND = 4, 4, 15, 2.0


def test_slow_and_idle_clients_do_not_starve_the_health_probe(tmp_path):
    with kapok_under_gunicorn(tmp_path) as port:
        stop = threading.Event()
        slow = [threading.Thread(target=slow_header_client, args=(port, stop), daemon=True)
                for _ in range(SLOW_CLIENTS)]
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE_CLIENTS)]
        for thread in slow:
            thread.start()
        time.sleep(2)  # every slow client has a thread (or a worker) reading it
        answered, slowest = 0, 0.0
        try:
            for _ in range(PROBES):
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                                timeout=PROBE_BOUND) as response:
                        answered += response.status == 200
                    slowest = max(slowest, time.monotonic() - started)
                except OSError:
                    slowest = max(slowest, time.monotonic() - started)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        finally:
            stop.set()
            for connection in idle:
                connection.close()
        print(f"health probes answered {answered} of {PROBES}, slowest {slowest:.3f} s")
        assert (answered, PROBES) == (PROBES, PROBES), f"{answered} of {PROBES} probes answered"
        assert slowest < PROBE_BOUND


LONG_QUERY = "x=" + "a" * 5000  # past gunicorn's limit on a request line (4094 bytes)


def test_a_request_line_too_long_is_refused_in_json_under_the_api(tmp_path):
    with kapok_under_gunicorn(tmp_path) as port:
        connection, raw = request(port, f"GET /api/v1/listings?{LONG_QUERY} HTTP/1.1\r\n"
                                        "Host: kapok\r\n\r\n".encode())
        connection.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 414")
        assert b"content-type: application/json" in head.lower()
        assert json.loads(body) == {"code": 414, "status": "Request URI Too Long",
                                    "message": "the request line is too long"}
        with pytest.raises(urllib.error.HTTPError) as page:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/catalogue?{LONG_QUERY}", timeout=5)
        page.value.close()
        assert page.value.code == 414
        assert page.value.headers["Content-Type"].startswith("text/html")


def test_kapok_serve_runs_the_app_under_these_settings(tmp_path):
    port = free_port()
    env = local_env(tmp_path)
    home = Path(env["HOME"])
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--no-worker", "--workers", "1",
         "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for_health(port, process)
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"python:web.serving" in command  # the Procfile's settings, not gunicorn's
        # No control socket: gunicorn's default puts one per user in the home directory,
        # which every other server on the host would take over.
        assert not (home / ".gunicorn").exists()
    finally:
        process.terminate()
        process.wait(15)
        process.stderr.close()


def test_a_worker_freezes_what_start_up_made_and_makes_full_collections_rarer():
    probe = ("import gc, json; from web.serving import post_worker_init; "
             "before = gc.get_threshold(); post_worker_init(None); "
             "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    before, after, frozen = json.loads(done.stdout)
    assert after[:2] == before[:2]  # the young generations as Python has them
    assert after[2] == 100 > before[2]
    assert frozen > 0
