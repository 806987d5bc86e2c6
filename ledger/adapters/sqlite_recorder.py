"""eventsourcing's SQLite recorder, with subscriptions by polling.

SQLite cannot notify another process of a commit, and eventsourcing's SQLite recorder
offers no subscription; its projection runner needs one. This one asks the store for newer
events whenever it has none left to hand out, and between empty answers waits a little.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Sequence

from eventsourcing.persistence import Notification, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder

POLL_SECONDS = 0.02
PAGE_SIZE = 500


class PollingSubscription(Subscription[SQLiteApplicationRecorder]):
    """Notifications after ``gt``, in order, for as long as it is not stopped."""

    def __init__(self, recorder: SQLiteApplicationRecorder, gt: int | None = None,
                 topics: Sequence[str] = (), poll_seconds: float = POLL_SECONDS):
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._ready: deque[Notification] = deque()

    def stop(self) -> None:
        super().stop()
        self._stopping.set()

    def __next__(self) -> Notification:
        while not self._ready:
            if self._has_been_stopped:
                raise StopIteration
            notifications = self._recorder.select_notifications(
                start=self._last_notification_id or 0, limit=PAGE_SIZE,
                topics=self._topics, inclusive_of_start=False)
            if notifications:
                self._ready.extend(notifications)
                self._last_notification_id = notifications[-1].id
            else:
                self._stopping.wait(self._poll_seconds)
        if self._has_been_stopped:
            raise StopIteration
        return self._ready.popleft()


class KapokSQLiteRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite application recorder, able to subscribe (by polling)."""

    def subscribe(self, gt: int | None = None,
                  topics: Sequence[str] = ()) -> PollingSubscription:
        return PollingSubscription(self, gt=gt, topics=topics)
