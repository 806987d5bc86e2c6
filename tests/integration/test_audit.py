"""The audit log: tampering with the stored events is found and named, replay at a past moment
matches what was live then, and the follower resumes exactly where it stopped."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from ledger.application import Ledger
from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.log import AuditLog, notification_leaf
from ledger.audit.merkle import Frontier
from ledger.audit.verification import verify
from ledger.read.replay import replay, stored_notifications
from ledger.domain.serials import SerialRange
from testbed.builders import INVENTORY, claim, ledger_with_project
from tests.integration.tampering import Store, position_of


@pytest.fixture
def key(tmp_path) -> SigningKey:
    path = tmp_path / "keys" / "tree.pem"
    generate_key(path)
    return SigningKey.load(path)


def some_activity(ledger: Ledger) -> None:
    """Issuances, transfers, a retirement and a cancellation: ~40 events."""
    ledger_with_project(ledger)
    ledger.issue("VCS-1067", 2019, 1_000)
    ledger.issue("VCS-1067", 2020, 5_000)
    ledger.transfer(INVENTORY, "acme", quantity=1_200)
    ledger.transfer(INVENTORY, "globex", quantity=300)
    ledger.retire("acme", claim(), quantity=250)
    ledger.cancel("globex", "issued in error", quantity=20)
    ledger.transfer("acme", "globex", serials=SerialRange(1_000_301, 1_000_350))


@pytest.fixture
def audited(ledger, key):
    """A ledger with activity, fully logged under a signed head."""
    some_activity(ledger)
    AuditLog(ledger).follow(key)
    return ledger


def problem_positions(report) -> set[int]:
    return {problem.position for problem in report.problems if problem.position is not None}


def test_an_untouched_store_verifies(audited, key):
    report = verify(audited, key.public_pem)
    assert report.ok, report.problems
    assert report.events == report.logged == audited.recorder.max_notification_id()
    assert report.heads_checked >= 1


def test_changing_one_byte_of_a_stored_event_is_named(audited, key):
    store = Store(audited)
    position = position_of(audited, "Account.Received")
    state = store.state(position)
    digit = next(i for i, byte in enumerate(state) if chr(byte).isdigit())
    altered = state[:digit] + bytes([ord("9") if state[digit] != ord("9") else ord("8")]) + state[digit + 1:]
    store.set_state(position, altered)

    report = verify(audited, key.public_pem)

    assert not report.ok
    assert position in problem_positions(report)
    assert any(p.rule == "event_unchanged" and p.position == position for p in report.problems)
    assert any(p.rule == "tree_head_root" for p in report.problems)


def test_an_event_that_no_longer_decodes_is_reported_not_crashed_on(audited, key):
    store = Store(audited)
    position = position_of(audited, "Retirement.Recorded")
    store.set_state(position, store.state(position)[:-1] + b"?")

    report = verify(audited, key.public_pem)

    assert {"event_unchanged", "event_decodes"} <= {p.rule for p in report.problems if p.position == position}


def test_a_deleted_event_is_named(audited, key):
    position = position_of(audited, "Account.Sent", 1)
    Store(audited).delete(position)

    report = verify(audited, key.public_pem)

    assert any(p.rule == "event_kept" and p.position == position for p in report.problems)


def test_two_swapped_events_are_both_named(audited, key):
    a, b = position_of(audited, "Account.Sent", 0), position_of(audited, "Account.Received", 1)
    Store(audited).swap(a, b)

    report = verify(audited, key.public_pem)

    moved = {p.position for p in report.problems if p.rule == "event_unchanged"}
    assert {a, b} <= moved


def test_a_forged_event_appended_after_the_last_head_is_named(audited, key):
    # An intruder replays a genuine "received" event: the account would hold the serials twice.
    forged = Store(audited).append_copy_as_next_version(position_of(audited, "Account.Received"))

    report = verify(audited, key.public_pem)

    assert not report.ok
    assert forged in problem_positions(report)
    assert report.unlogged == (forged, forged, 1)


def test_a_forged_event_logged_by_the_follower_is_still_named_by_the_invariants(audited, key):
    forged = Store(audited).append_copy_as_next_version(position_of(audited, "Account.Received"))
    AuditLog(audited).follow(key)  # the follower signs whatever is stored...

    report = verify(audited, key.public_pem)

    assert forged in problem_positions(report)  # ...but the ledger's rules do not hold


def test_a_head_signed_by_another_key_fails(audited, tmp_path):
    generate_key(tmp_path / "other.pem")
    other = SigningKey.load(tmp_path / "other.pem")

    report = verify(audited, other.public_pem)

    assert any(p.rule == "tree_head_signed" for p in report.problems)


def test_replay_at_a_past_moment_equals_the_balances_live_then(ledger):
    ledger_with_project(ledger)
    ledger.issue("VCS-1067", 2019, 1_000)
    ledger.transfer(INVENTORY, "acme", quantity=100)
    live_then = ledger.caught_up_view().balances()
    position_then = ledger.recorder.max_notification_id()
    time.sleep(0.01)
    moment = datetime.now(timezone.utc)
    time.sleep(0.01)
    # More activity after the moment.
    ledger.retire("acme", claim(), quantity=60)
    ledger.transfer(INVENTORY, "globex", quantity=500)
    ledger.issue("VCS-1067", 2020, 2_000)

    def comparable(rows):
        return sorted((r["account"], r["project"], r["vintage"], r["status"], r["quantity"])
                      for r in rows if r["status"] != "retired")

    assert comparable(replay(ledger, until=moment).balances()) == comparable(live_then)
    assert comparable(replay(ledger, until_position=position_then).balances()) == comparable(live_then)
    assert comparable(replay(ledger).balances()) == comparable(ledger.caught_up_view().balances())


class Interrupted(Exception):
    pass


def test_a_follower_stopped_mid_stream_resumes_to_the_same_root(ledger, key):
    some_activity(ledger)
    pages = []

    def stop_after_three_pages(count):
        pages.append(count)
        if len(pages) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        AuditLog(ledger).follow(key, progress=stop_after_three_pages, page_size=7)
    assert AuditLog(ledger).size() == 21  # three committed pages, nothing half-written

    head = AuditLog(ledger).follow(key, page_size=7)  # a new process picks up from there

    never_stopped = Frontier()
    for notification in stored_notifications(ledger):
        never_stopped.append(notification_leaf(notification))
    assert head.tree_size == never_stopped.size == ledger.recorder.max_notification_id()
    assert head.root_hash == never_stopped.root()
    assert verify(ledger, key.public_pem).ok


def test_a_page_that_fails_to_commit_leaves_nothing_behind(ledger, key, monkeypatch):
    some_activity(ledger)
    log = AuditLog(ledger)
    log.follow(key, page_size=10)
    size_before = log.size()
    ledger.issue("VCS-1067", 2021, 100)

    def broken_write(statements, tracking):
        raise ConnectionError("connection lost")

    monkeypatch.setattr(log.recorder, "write", broken_write)
    with pytest.raises(ConnectionError):
        log.follow(key)
    monkeypatch.undo()  # the connection is back (the recorder is the process's one)
    assert AuditLog(ledger).size() == size_before

    head = AuditLog(ledger).follow(key)
    assert head.tree_size == ledger.recorder.max_notification_id()
    assert verify(ledger, key.public_pem).ok
