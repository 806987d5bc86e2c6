"""The read model's projection: the event log applied to the view's tables, in batches.

``kapok worker`` runs it with eventsourcing's projection runner (``run_view_projection``),
subscribed to the application's events: PostgreSQL notifies it of new events, on SQLite it
polls (``ledger.adapters.sqlite_recorder``). Nothing else writes the view; the command line and the
tests may catch it up through the same class (``ViewProjection.catch_up``).

Events are applied in batches, each in one transaction with the tracked position: a batch is
written when it is full or when it reaches the newest event in the store, so under load one
commit carries many events and at rest an event reaches the view at once. Any number of
projections may run at once (two workers, a worker and the command line): a batch claims its
first position before writing (``write_range``), and one that finds it taken drops what
another process applied and goes on from there.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import BaseProjectionRunner, Projection

from ledger.read.view import LedgerView

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# How the worker's PostgreSQL connections are named in pg_stat_activity.
WORKER_CONNECTIONS = "kapok worker"


class ViewProjection(Projection[TrackingRecorder]):
    """Applies events to a ``LedgerView`` (or the market's) in batches."""

    name = "kapok_view"

    def __init__(self, model: LedgerView, batch_size: int = BATCH_SIZE):
        super().__init__(view=model.recorder)
        self.model = model
        self.batch_size = batch_size
        self._applied = model.position()
        self._head = 0  # the newest position known to be in the store
        self._pending: list[tuple[int, list, dict]] = []

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        position = tracking.notification_id
        if position <= self._applied:
            return  # another process applied it
        statements, deltas = self.model.translate(domain_event, position)
        self._pending.append((position, statements, deltas))
        if len(self._pending) >= self.batch_size or self._at_head(position):
            self.flush()

    def _at_head(self, position: int) -> bool:
        """Whether no newer event is in the store yet (asks only once the newest one known
        is reached)."""
        if position < self._head:
            return False
        self._head = self.model.app.recorder.max_notification_id() or 0
        return position >= self._head

    def flush(self) -> None:
        """Writes the pending events, less any another process applied meanwhile."""
        while self._pending:
            statements: list = []
            deltas: dict = {}
            for _position, event_statements, event_deltas in self._pending:
                statements += event_statements
                for key, quantity in event_deltas.items():
                    deltas[key] = deltas.get(key, 0) + quantity
            first, last = self._pending[0][0], self._pending[-1][0]
            try:
                self.model.apply(first, last, statements, deltas)
            except IntegrityError:
                applied = self.model.position()
                if applied < first:
                    # Nobody else applied them: these events clash with the tables
                    # themselves (edited by hand), and trying again would never end.
                    raise
                self._applied = applied
                self._pending = [item for item in self._pending if item[0] > self._applied]
                continue
            self._applied = last
            self._pending = []

    def catch_up(self) -> int:
        """Applies, in this process, every event the view lacks; returns its position."""
        app = self.model.app
        while True:
            notifications = app.recorder.select_notifications(
                start=self._applied, limit=self.batch_size, inclusive_of_start=False)
            if not notifications:
                self.flush()
                return self._applied
            for notification in notifications:
                self.process_event(app.mapper.to_domain_event(notification),
                                   Tracking(self.model.tracking_name, notification.id))
            self.flush()


def run_view_projection(store) -> BaseProjectionRunner:
    """Starts eventsourcing's projection runner on ``store``'s view: it subscribes to a new
    instance of the store's class (on the same database) and applies its events in a
    thread of its own. Use it as a context manager; ``run_forever(timeout)`` raises what
    stopped it."""
    projection = ViewProjection(store.view)
    return BaseProjectionRunner(projection=projection, application_class=type(store),
                                tracking_recorder=store.view.recorder, topics=(),
                                env=store.view_env())


def keep_view_projected(store, stop: threading.Event, every: float = 2.0,
                        between: Callable[[], object] = lambda: None) -> None:
    """Runs the view's projection until ``stop`` is set, starting it again whenever it
    fails (a database that went away, a connection lost), and calls ``between`` every
    ``every`` seconds (the worker's other rounds: signed heads, expiries)."""
    while not stop.is_set():
        try:
            with run_view_projection(store) as runner:
                while not stop.is_set() and not runner.is_interrupted.is_set():
                    _logging_failure(between)
                    runner.run_forever(timeout=every)
        except Exception:  # logged, then tried again: the worker must outlive the outage
            log.exception("the read model's projection stopped; starting it again in %.1f s",
                          every)
            stop.wait(every)


def _logging_failure(work: Callable[[], object]) -> None:
    """Runs ``work``; a failure is logged, and the projection beside it goes on."""
    try:
        work()
    except Exception:
        log.exception("a round of the worker failed; it runs again in the next")
