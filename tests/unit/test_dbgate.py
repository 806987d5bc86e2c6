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


def test_a_database_that_does_not_answer_is_reported_at_once_until_it_is_back():
    pool, clock = Pool(), Clock()
    gate = DatabaseGate(pool, fresh_for=1.0, clock=clock)
    pool.up = False
    clock.now += 2
    with pytest.raises(DatabaseUnavailable):
        gate.check()
    with pytest.raises(DatabaseUnavailable):
        gate.check()
    pool.up = True
    gate.check()
