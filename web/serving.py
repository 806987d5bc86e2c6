"""How gunicorn serves Kapok: ``gunicorn -c python:web.serving "web:create_app()"`` (the
Procfile, ``kapok serve`` and the benchmark's servers).

gunicorn 27's sync worker, after each response, half-closes the connection and then waits
(up to 2 s) for the client to close its side, draining what it sends meanwhile (RFC 9112
section 9.6: an unread request body left in the socket would make the kernel answer with a
reset, which can destroy the response before the client reads it). A sync worker serves
one connection at a time, so while it waits for a client to get round to closing it serves
nobody: a network round trip per request on a real network, and about a tenth of the
workers' time under the order benchmark's load. ``PromptSyncWorker`` waits only when that
reset could happen: when the request's body was not read to its end, or more has arrived
since. Otherwise there is nothing left to drain and it closes at once (gunicorn 26 and
earlier always did).
"""

from __future__ import annotations

import gc
import select

from gunicorn import util
from gunicorn.http.body import LengthReader
from gunicorn.workers.sync import SyncWorker

worker_class = "web.serving.PromptSyncWorker"
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
    need not scan it again; each such pass held a worker for about 60 ms, 28 ms after.

    Full passes are also made ten times rarer. Under the order benchmark's load Python's
    default ran one about every 12 s in each worker, taking 25-75 ms with 10,000 aggregates
    cached and 10-17 ms with 2,000 (the cache is most of what a pass scans: see
    ``Ledger.__init__``); a worker paused while holding a listing's turn stalls the other as
    well, and every order in flight with it. What only a full pass frees (reference cycles
    that lived through two younger passes) was a few hundred objects each time, so waiting
    longer costs little."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class PromptSyncWorker(SyncWorker):
    """gunicorn's sync worker, closing at once after a request read to its end."""

    _linger = staticmethod(util.close_graceful)  # gunicorn's own, for when it is needed

    def init_process(self) -> None:
        # The sync worker closes every connection through util.close_graceful; this process
        # is this worker's alone, so that is where its choice goes.
        util.close_graceful = self._close
        super().init_process()

    def handle(self, listener, client, addr) -> None:
        self._read_whole = False
        super().handle(listener, client, addr)

    def handle_request(self, listener, req, client, addr) -> None:
        try:
            super().handle_request(listener, req, client, addr)
        finally:
            reader = getattr(req.body, "reader", None)
            self._read_whole = isinstance(reader, LengthReader) and reader.length == 0

    def _close(self, sock, timeout: float = 2.0, max_drain: int = 65536) -> None:
        if self._read_whole and not _readable(sock):
            util.close(sock)
        else:
            self._linger(sock, timeout, max_drain)


def _readable(sock) -> bool:
    """Whether anything (data, or the client's own close) is waiting in the socket; if that
    cannot be asked, say so, and gunicorn's own close lingers. (poll, not select: select
    refuses descriptors above 1023.)"""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
