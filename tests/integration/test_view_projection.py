"""The read model's projection across processes, on SQLite and PostgreSQL: each process is an
application instance of its own on one store, as gunicorn workers and `kapok worker` are."""

from __future__ import annotations

import threading
from decimal import Decimal

from eventsourcing.persistence import IntegrityError

from ledger.domain.accounts import HOLDING, account_id as account_id_of
from ledger.application import Ledger
from ledger.read.projection import ViewProjection, keep_view_projected
from ledger.read.replay import replay
from testbed.builders import ledger_with_project

KEY = ("account", "project", "vintage", "status", "quantity")


def holdings(rows) -> list[tuple]:
    return sorted(tuple(row[k] for k in KEY) for row in rows
                  if row["status"] not in ("retired", "cancelled") and row["quantity"])


def test_a_view_applies_accounts_opened_in_events_another_process_applied(database_url):
    first, second = Ledger(database=database_url), Ledger(database=database_url)
    try:
        ledger_with_project(first)
        first.caught_up_view()
        second.open_account("newcomer", HOLDING)
        second.caught_up_view()  # the other process applies the account's opening
        first.issue("VCS-1067", 2021, 10, buffer_percent=Decimal(0), to_account="newcomer")

        first.caught_up_view()  # then this one applies what follows

        assert holdings(first.view.balances()) == holdings(replay(first).balances())
        assert ("newcomer", "VCS-1067", 2021, "held", 10) in holdings(first.view.balances())
    finally:
        first.close()
        second.close()


def test_two_projections_at_once_apply_every_event_once(database_url):
    writer = Ledger(database=database_url)
    ledger_with_project(writer)
    projectors = [Ledger(database=database_url) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=keep_view_projected, args=(projector.store, stop),
                                kwargs={"every": 0.05}) for projector in projectors]
    try:
        for thread in threads:
            thread.start()
        for number in range(40):
            writer.open_account(f"holder-{number}", HOLDING)
            writer.issue("VCS-1067", 2021, number + 1, to_account=f"holder-{number}")
            if number and number % 3 == 0:
                writer.transfer(f"holder-{number}", f"holder-{number // 2}", quantity=1)
        writer.view.wait(writer.recorder.max_notification_id(), timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert holdings(writer.view.balances()) == holdings(replay(writer).balances())
    for app in (writer, *projectors):
        app.close()


def test_a_projection_behind_another_drops_what_the_other_applied(database_url):
    ahead, behind = Ledger(database=database_url), Ledger(database=database_url)
    try:
        ledger_with_project(ahead)
        late = ViewProjection(behind.view)  # knows the position before the other catches up
        ahead.caught_up_view()

        assert late.catch_up() == ahead.view.position()
        assert holdings(ahead.view.balances()) == holdings(replay(ahead).balances())
    finally:
        ahead.close()
        behind.close()


def test_a_failing_round_of_the_worker_leaves_the_projection_running(database_url):
    writer = Ledger(database=database_url)
    projector = Ledger(database=database_url)
    ledger_with_project(writer)
    stop = threading.Event()
    failed = threading.Event()

    def failing_round():  # as the audit's round without a signing key
        failed.set()
        raise RuntimeError("no signing key")

    thread = threading.Thread(target=keep_view_projected, args=(projector.store, stop),
                              kwargs={"every": 2.0, "between": failing_round})
    thread.start()
    try:
        failed.wait(10)
        writer.open_account("late", HOLDING)
        # Applied within a fraction of the worker's round, not after a restart.
        writer.view.wait(writer.saved_position(), timeout=1.0)
    finally:
        stop.set()
        thread.join(30)
        writer.close()
        projector.close()


def test_events_the_view_cannot_apply_stop_the_projection_rather_than_spin(database_url):
    writer = Ledger(database=database_url)
    try:
        writer.caught_up_view()
        account_id = str(account_id_of("clash"))
        # A row no projection wrote (a table edited by hand): the event that opens the account
        # collides with it though no other process has applied that event.
        recorder = writer.view.recorder
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(recorder.adapt(
                "INSERT INTO kapok_accounts VALUES (:id, 'clash', 'holding', '')"),
                {"id": account_id})
        writer.open_account("clash", HOLDING)
        outcome: list = []

        def catch_up():
            try:
                ViewProjection(writer.view).catch_up()
                outcome.append("caught up")
            except IntegrityError as error:
                outcome.append(error)

        thread = threading.Thread(target=catch_up, daemon=True)
        thread.start()
        thread.join(30)

        assert not thread.is_alive(), "the projection retried the same events for ever"
        assert isinstance(outcome[0], IntegrityError)
    finally:
        writer.close()
