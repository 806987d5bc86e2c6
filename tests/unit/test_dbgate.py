"""The database gate: while the database answers it asks nothing; once it has not answered
for a moment, one brief question decides, and a dead database means a 503 at once."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from web.dbgate import DatabaseGate, DatabaseUnavailable


class Pool:
    def __init__(self):
        self.up, self.asked = True, 0

    @contextmanager
    def connection(self, timeout):
        self.asked += 1
        if not self.up:
            raise OSError("connection refused")
        yield self

    def execute(self, sql):
        return None


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_recent_answer_lets_requests_through_without_asking():
    pool, clock = Pool(), Clock()
    gate = DatabaseGate(pool, fresh_for=1.0, clock=clock)
    clock.now += 0.5
    gate.check()
    assert pool.asked == 0


def test_after_a_quiet_second_the_gate_asks_once_and_remembers_the_answer():
    pool, clock = Pool(), Clock()
    gate = DatabaseGate(pool, fresh_for=1.0, clock=clock)
    clock.now += 2
    gate.check()
    gate.check()
    assert pool.asked == 1


def test_a_database_that_does_not_answer_is_reported_at_once_until_asked_again():
    pool, clock = Pool(), Clock()
    gate = DatabaseGate(pool, fresh_for=1.0, clock=clock)
    pool.up = False
    clock.now += 2
    with pytest.raises(DatabaseUnavailable):
        gate.check()
    pool.up = True
    with pytest.raises(DatabaseUnavailable):  # the failure stands for a second, unasked
        gate.check()
    assert pool.asked == 1
    clock.now += 1
    gate.check()
    assert pool.asked == 2


def test_while_one_request_asks_the_others_go_by_the_last_answer():
    import threading

    asking, release = threading.Event(), threading.Event()

    class HangingPool(Pool):
        @contextmanager
        def connection(self, timeout):
            self.asked += 1
            asking.set()
            release.wait(5)
            yield self

    pool, clock = HangingPool(), Clock()
    gate = DatabaseGate(pool, fresh_for=1.0, clock=clock)
    clock.now += 2
    asker = threading.Thread(target=gate.check)
    asker.start()
    asking.wait(5)
    gate.check()  # not queued behind the question: the last answer was good
    release.set()
    asker.join(5)
    assert pool.asked == 1
