"""Values reach the database as parameters, never in SQL text: text that would end, change or
confuse a statement it were written into (quotes, backslashes, placeholders, comments,
unicode) is stored and read back exactly, on SQLite and on PostgreSQL, and on PostgreSQL no
statement sent carries a value of the sale it records."""

from __future__ import annotations

import contextlib
import re

import psycopg
import pytest
from eventsourcing.persistence import DataError

from ledger.adapters.sql_recorders import tables_recorder
from ledger.domain.retirements import RetirementClaim
from ledger.read.public_registry import search_retirements
from market.application import Marketplace
from testbed.builders import INVENTORY, claim, ledger_with_project, project_details
from tests.integration.market_scenario import BUYER, seed_market

HOSTILE = [
    "O'Brien \"Ltd\" ''",
    "back\\slash \\' \\\\ \\x00 \\n",
    "%s %b %(name)s %% :name $1 ? {0} {blob}",
    "'); DROP TABLE kapok_retirements; --",
    "*/ /* -- ; COMMIT;",
    "Café Ñandú 東京 شركة 🌳 \u00a0\u2028 ﷽",
]

VALUES_TABLE = ("CREATE TABLE IF NOT EXISTS kapok_test_values "
                "(k INTEGER PRIMARY KEY, v TEXT, b {blob})")
INSERT_VALUE = "INSERT INTO kapok_test_values VALUES (:k, :v, :b)"


def values_recorder(app):
    return tables_recorder(app.store, "ValuesRecorder", [VALUES_TABLE])


def test_any_text_round_trips_through_the_views_batched_writes(ledger):
    recorder = values_recorder(ledger)
    statements = [(INSERT_VALUE, {"k": k, "v": value, "b": value.encode()})
                  for k, value in enumerate(HOSTILE)]
    # The read model's way: a batch of statements and the tracked position, one transaction.
    recorder.write_range("kapok-test-values", 1, 3, statements)

    rows = recorder.query("SELECT k, v, b FROM kapok_test_values ORDER BY k", {})
    assert [(row["v"], bytes(row["b"])) for row in rows] == [
        (value, value.encode()) for value in HOSTILE]
    for k, value in enumerate(HOSTILE):  # and found by it, as a parameter of a query
        assert [row["k"] for row in recorder.query(
            "SELECT k FROM kapok_test_values WHERE v = :v", {"v": value})] == [k]
    assert recorder.max_tracking_id("kapok-test-values") == 3


def test_a_nul_is_stored_in_bytes_and_in_sqlite_text_and_refused_in_postgresql_text(
        ledger, database_url):
    recorder = values_recorder(ledger)
    recorder.write_range("kapok-test-values", 1, 1,
                         [(INSERT_VALUE, {"k": 1, "v": "A", "b": b"A\x00B"})])
    nul_text = [(INSERT_VALUE, {"k": 2, "v": "A\x00B", "b": b""})]
    if database_url.startswith("sqlite"):
        recorder.write_range("kapok-test-values", 2, 2, nul_text)
        expected = [("A", b"A\x00B"), ("A\x00B", b"")]
    else:  # PostgreSQL text cannot hold NUL: refused whole, the position not moved
        with pytest.raises(DataError, match="NUL"):
            recorder.write_range("kapok-test-values", 2, 2, nul_text)
        expected = [("A", b"A\x00B")]
    rows = recorder.query("SELECT v, b FROM kapok_test_values ORDER BY k", {})
    assert [(row["v"], bytes(row["b"])) for row in rows] == expected
    assert recorder.max_tracking_id("kapok-test-values") == len(expected)


def test_hostile_free_text_is_recorded_and_found_exactly_through_the_read_model(ledger):
    ledger_with_project(ledger)
    ledger.register_project(project_details("VCS-9", name=HOSTILE[0]))
    ledger.issue("VCS-1067", 2019, 100)
    for number, text in enumerate(HOSTILE):
        ledger.open_account(f"holder-{number}", owner=text)
        ledger.transfer(INVENTORY, f"holder-{number}", 1)
        ledger.retire(f"holder-{number}", RetirementClaim(beneficiary=text, reason=text), 1)
    view = ledger.caught_up_view()

    assert {row["owner"] for row in view.accounts()} >= set(HOSTILE)
    assert {row["name"] for row in view.projects()} >= {HOSTILE[0]}
    retired = view.retirements()
    assert sorted((row["beneficiary"], row["reason"]) for row in retired) == sorted(
        (text, text) for text in HOSTILE)
    # Each finds its own retirement, and no other (SQLite's LOWER lowers ASCII letters only).
    for text in (text for text in HOSTILE if text.isascii()):
        rows, total = search_retirements(view, text)
        assert (total, [row["beneficiary"] for row in rows]) == (1, [text])


@contextlib.contextmanager
def sent_sql():
    """The text of every statement psycopg sends, in this process."""
    texts: list[str] = []
    execute = psycopg.Cursor.execute

    def recording(self, query, *args, **kwargs):
        texts.append(query.as_string(None) if hasattr(query, "as_string") else
                     query.decode() if isinstance(query, bytes) else query)
        return execute(self, query, *args, **kwargs)

    psycopg.Cursor.execute = recording
    try:
        yield texts
    finally:
        psycopg.Cursor.execute = execute


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@pytest.mark.postgres
def test_no_statement_of_a_sale_or_a_retirement_carries_its_values(postgres_url):
    app = Marketplace(database=postgres_url)
    try:
        listing = seed_market(app)
        app.ledger.open_account("org-acme", owner=BUYER)
        app.pay_offline(app.place_order(listing, 2, BUYER, "org-acme")["order_id"])  # warm
        with sent_sql() as texts:
            order = app.place_order(listing, 2, BUYER, "org-acme")
            app.pay_offline(order["order_id"])
            retired = app.ledger.retire("org-acme", claim(beneficiary=HOSTILE[3]), 1)
            view = app.caught_up_view()
            search_retirements(view, HOSTILE[3])
        assert texts  # the held commands among them: they read and save with turns
        carrying = [text for text in texts
                    if _UUID.search(text) or any(value in text for value in (
                        HOSTILE[3], order["order_id"], retired["retirement_id"], listing))]
        assert carrying == []
        assert view.retirements()[0]["beneficiary"] == HOSTILE[3]
    finally:
        app.close()
