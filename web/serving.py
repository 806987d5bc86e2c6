"""How gunicorn serves Kapok: ``gunicorn -c python:web.serving "web:create_app()"`` (the
Procfile, ``kapok serve`` and the benchmark's servers).

gunicorn's threaded worker: the main thread accepts and watches idle connections, a pool of
threads reads requests and runs the app. A client that idles or sends its headers slowly
holds one thread (an idle one only until gunicorn hands it back to the main loop), not the
whole process as with the sync worker, so a few of them cannot starve the others. Only a
few threads at a time run the app (``APP_SLOTS``): the others wait on clients or for a slot,
holding no database connection (``ledger/adapters/pg_store.py`` bounds the pool and every query).

Everything here is gunicorn's documented settings and server hooks but ``KapokThreadWorker``,
which extends two methods of gunicorn's threaded worker where no setting or hook serves
(``tests/contract/test_gunicorn.py`` checks what it relies on).
"""

from __future__ import annotations

import contextlib
import gc
import json
import select
import socket
import threading
import time

from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.http import HTTP_STATUS_CODES

from ledger.settings import KAPOK_APP_SLOTS

worker_class = "web.serving.KapokThreadWorker"
workers = 2
# Connections one worker reads from at once, and so the slow clients it can carry while it
# still answers everyone else.
threads = 16
# Requests one worker runs the app for at once. The others wait for a turn here, without a
# time limit and holding no database connection, as they would wait for a sync worker; let
# into the app they would queue on the pool and on a listing's turn, where every wait is
# bounded and a burst of orders for one listing would meet those bounds.
APP_SLOTS = KAPOK_APP_SLOTS.read()
keepalive = 5  # seconds an idle kept-alive connection stays open
timeout = 30  # a worker whose main loop stops for this long is restarted
graceful_timeout = 20  # on restart or shutdown, requests in flight get this long to finish
# Each worker its own listening socket, the kernel spreading new connections across them:
# with one shared socket the first idle worker takes every kept-alive client it can.
reuse_port = True
# gunicorn 27's control socket is on by default at one path per user ($HOME/.gunicorn): every
# server started on a host (a second instance, the benchmark's two) unlinks the last one's,
# and Kapok uses none of its commands.
control_socket_disable = True


# Full garbage collections at most once per this many collections of the middle
# generation (Python's default: 10). See post_worker_init.
FULL_COLLECTION_EVERY = 100


def post_worker_init(worker) -> None:
    """Once the app is built: what start-up made (modules, routes, schemas, the caches'
    first contents) lives as long as the worker, so the garbage collector's full passes
    need not scan it again.

    Full passes are also made much rarer: the aggregate cache is most of what a pass
    scans (see ``Store.__init__``), and a worker paused while holding a listing's turn
    stalls every order in flight with it. What only a full pass frees (reference cycles that
    lived through two younger passes) was a few hundred objects each time, so waiting longer
    costs little."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


# Each worker's turns at running the app, taken and given back by the hooks below (made in
# the worker, after the fork).
_app_slots: threading.BoundedSemaphore | None = None


def post_fork(server, worker) -> None:
    global _app_slots
    _app_slots = threading.BoundedSemaphore(APP_SLOTS)


def pre_request(worker, req) -> None:
    """Waits for one of the worker's ``APP_SLOTS`` before the app runs the request."""
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's own hook does
    _app_slots.acquire()


def post_request(worker, req) -> None:
    """Gives the request's slot back, whatever became of it (gunicorn calls this hook once
    for every ``pre_request``)."""
    _app_slots.release()


class KapokThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, with two changes: a request line too long for gunicorn is
    refused in JSON under ``/api/``, as the app refuses everything else there; and a
    connection's closing handshake is waited for in the request's thread, not in the main
    loop that accepts everyone else."""

    _API_PREFIXES = tuple(f"{method} /api/".encode() for method in
                          ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._request_start = threading.local()

    def handle(self, conn):
        # gunicorn keeps no part of a request line it refuses: look at its start beforehand,
        # without taking it from the socket (a client sends it as soon as it connects; one
        # that has sent nothing within a second is left to gunicorn's own wait).
        self._request_start.value = _peek(conn.sock, PEEK_WAIT)
        keep = super().handle(conn)
        if keep is False:
            # gunicorn waits for the client to close its side (RFC 9112 section 9.6) on the
            # main loop, where no other client is accepted meanwhile: wait here instead, so
            # that gunicorn's own close finds the connection finished.
            _wait_for_client_to_close(conn.sock)
        return keep

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, LimitRequestLine) and getattr(self._request_start, "value", b"") \
                .startswith(self._API_PREFIXES):
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
            phrase = HTTP_STATUS_CODES[414]  # as the app's own errors (web/errors.py)
            body = json.dumps({"code": 414, "status": phrase,
                               "message": "the request line is too long"}).encode()
            head = (f"HTTP/1.1 414 {phrase}\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            try:
                client.sendall(head + body)
            except OSError:
                self.log.debug("Failed to send error message.")
            return
        super().handle_error(req, client, addr, exc)


PEEK_WAIT = 1.0  # seconds


def _peek(sock, wait: float) -> bytes:
    """The first bytes waiting in the socket, left there; nothing if none come within
    ``wait`` seconds, or the socket cannot be peeked at (TLS). (poll, not select: select
    refuses descriptors above 1023.)"""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(wait * 1000):
            return b""
        return sock.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (OSError, ValueError):
        return b""


def _wait_for_client_to_close(sock, timeout: float = 2.0, max_drain: int = 65536) -> None:
    """Half-closes, then reads what the client still sends until it closes (at most
    ``timeout`` seconds and ``max_drain`` bytes), so that unread bytes cannot turn the close
    into a reset that destroys the response; then shuts the reading side too."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < max_drain and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(4096)
            if not data:
                break
            drained += len(data)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
