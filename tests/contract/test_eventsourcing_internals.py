"""What Kapok relies on in eventsourcing beyond its documented API, pinned: an upgrade that
changes any of it fails here, by name, not somewhere in a sale.

The store (ledger/adapters/store.py) saves through the application's own ``_record`` and
``_notify`` and fast-forwards cached aggregates under the repository's own lock; the table
recorders (ledger/adapters/sql_recorders.py) write tracking rows with the tracking recorder's
own statements; the SQLite subscription (ledger/adapters/sqlite_recorder.py) extends the
library's ``Subscription``; the PostgreSQL recorder (ledger/adapters/pg_recorder.py) extends
its application recorder's statements.
"""

from __future__ import annotations

import inspect
from uuid import uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording, Subscription, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteTrackingRecorder


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_an_application_records_a_processing_event_and_notifies_its_recordings():
    assert parameters(Application._record) == ["self", "processing_event"]
    assert parameters(Application._notify) == ["self", "recordings"]
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    aggregate = Aggregate()
    processing_event = ProcessingEvent()
    processing_event.events.extend(aggregate.collect_events())
    processing_event.aggregates[aggregate.id] = aggregate

    recordings = app._record(processing_event)
    app._notify(recordings)

    assert [type(recording) for recording in recordings] == [Recording]
    assert recordings[0].notification.id == 1
    assert app.repository.get(aggregate.id).id == aggregate.id


def test_the_repository_lends_and_takes_back_a_lock_per_aggregate():
    assert parameters(Repository._use_fastforward_lock) == ["self", "aggregate_id"]
    assert parameters(Repository._disuse_fastforward_lock) == ["self", "aggregate_id"]
    repository = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo",
                                  "AGGREGATE_CACHE_MAXSIZE": "10"}).repository
    aggregate_id = uuid4()
    lock = repository._use_fastforward_lock(aggregate_id)
    with lock:
        pass
    repository._disuse_fastforward_lock(aggregate_id)
    assert repository.cache is not None  # what the store's batch reads bring up to date


@pytest.mark.parametrize("recorder", [SQLiteTrackingRecorder, PostgresTrackingRecorder])
def test_a_tracking_recorder_inserts_tracking_and_reads_its_maximum_in_a_transaction(recorder):
    assert parameters(recorder._insert_tracking)[0] == "self"
    assert len(parameters(recorder._insert_tracking)) == 3  # self, cursor, tracking
    assert len(parameters(recorder._max_tracking_id)) == 3  # self, application name, cursor
    assert parameters(recorder._max_tracking_id)[1] == "application_name"


def test_sqlite_tracking_rows_written_with_the_recorders_own_statements_are_read_back(
        tmp_path):
    from eventsourcing.sqlite import SQLiteDatastore

    recorder = SQLiteTrackingRecorder(SQLiteDatastore(str(tmp_path / "tracking.db")))
    recorder.create_table()
    with recorder.datastore.transaction(commit=True) as cursor:
        recorder._insert_tracking(cursor, Tracking("upstream", 7))
    with recorder.datastore.transaction(commit=False) as cursor:
        assert recorder._max_tracking_id("upstream", cursor) == 7
    assert recorder.max_tracking_id("upstream") == 7


def test_a_subscription_keeps_what_a_polling_subclass_reads():
    init = parameters(Subscription.__init__)
    assert init[:4] == ["self", "recorder", "gt", "topics"]
    source = inspect.getsource(Subscription.__init__)
    for attribute in ("_recorder", "_last_notification_id", "_topics", "_has_been_stopped"):
        assert f"self.{attribute}" in source, attribute


def test_the_application_recorders_keep_the_statements_kapok_extends():
    assert "max_notification_id_statement" in inspect.getsource(
        PostgresApplicationRecorder.__init__)
    assert "sql_create_statements" in inspect.getsource(PostgresApplicationRecorder.__init__)
    assert callable(SQLiteApplicationRecorder.subscribe)
    # The table recorders add their tables' statements to the tracking recorder's own.
    assert "sql_create_statements" in inspect.getsource(PostgresTrackingRecorder.__init__)
    assert parameters(SQLiteTrackingRecorder.construct_create_table_statements) == ["self"]
