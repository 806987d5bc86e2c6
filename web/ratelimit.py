"""A small in-process limiter for log-in attempts (per client address and e-mail).

Per process on purpose: with gunicorn's few workers an attacker gets at most a few times the
limit, and no extra service (Redis) is needed to run Kapok.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class AttemptLimiter:
    def __init__(self, attempts: int = 5, per_seconds: float = 60.0, clock=time.monotonic):
        self.attempts, self.window, self.clock = attempts, per_seconds, clock
        self._seen: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: tuple) -> bool:
        """Counts an attempt; False once ``attempts`` were made within the window."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 10_000:  # bound memory under a spray of keys
                self._seen.clear()
            recent = self._seen.setdefault(key, deque())
            while recent and now - recent[0] > self.window:
                recent.popleft()
            if len(recent) >= self.attempts:
                return False
            recent.append(now)
            return True

    def reset(self, key: tuple) -> None:
        with self._lock:
            self._seen.pop(key, None)
