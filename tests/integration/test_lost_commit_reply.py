"""A save whose connection fails is made exactly once. If the insert never reached
PostgreSQL it is tried again; if it was committed and only the answer was lost, the recorder
finds it stored, where an insert again would be refused as a conflict with itself and the
command would run a second time on top of its own effect."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import psycopg
import pytest
from psycopg import pq

from ledger.application import Ledger
from market.application import Marketplace
from testbed.builders import INVENTORY, ledger_with_project
from tests.integration.market_scenario import BUYER, seed_market

pytestmark = pytest.mark.postgres

LOST = "server closed the connection unexpectedly"


class FailedSave(NamedTuple):
    query: str
    in_turns: bool  # sent in the transaction holding a command's turns, to commit with it


def breaking_the_next_save(app, answer_lost: bool) -> list[FailedSave]:
    """The next save's connection fails: as its query is sent (nothing reaches the server),
    or with ``answer_lost`` after the server ran it (committed) and before the answer came
    back. Returns the saves that failed."""
    datastore, failed = app.recorder.datastore, []
    get_connection = datastore.get_connection

    def is_save(query) -> bool:
        return '_insert"(' in str(query)  # Kapok's insert function

    class Cursor:
        def __init__(self, cursor):
            self.cursor = cursor

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.cursor.__exit__(*exc)

        def execute(self, query, *args, **kwargs):
            if failed or not is_save(query):
                return self.cursor.execute(query, *args, **kwargs)
            connection = self.cursor.connection
            # A command's turns are held in a pipeline's transaction, which its save ends.
            failed.append(FailedSave(
                str(query), connection.info.pipeline_status != pq.PipelineStatus.OFF))
            if answer_lost:  # in turns, the pipeline's Sync that ends them commits it
                self.cursor.execute(query, *args, **kwargs)
                connection.commit()  # autocommit: a no-op
            raise psycopg.OperationalError(LOST)

        def __getattr__(self, name):
            return getattr(self.cursor, name)

    class Connection:
        def __init__(self, connection):
            self.connection = connection

        def cursor(self, *args, **kwargs):
            return Cursor(self.connection.cursor(*args, **kwargs))

        def __getattr__(self, name):
            return getattr(self.connection, name)

    @contextlib.contextmanager
    def connection():
        with get_connection() as real:
            yield Connection(real)

    datastore.get_connection = connection
    return failed


@pytest.fixture
def ledger(postgres_url):
    app = ledger_with_project(Ledger(database=postgres_url))
    app.issue("VCS-1067", 2021, 1000)
    yield app
    app.close()


def stored(app, topic_end: str) -> int:
    return sum(1 for notification in app.recorder.select_notifications(1, 10_000)
               if notification.topic.endswith(topic_end))


def test_a_transfer_whose_commit_answer_was_lost_is_made_once(ledger):
    failed = breaking_the_next_save(ledger, answer_lost=True)

    ledger.transfer(INVENTORY, "acme", 7)

    assert len(failed) == 1  # the connection did fail, after the commit
    assert ledger.get_account("acme").balance == 7
    assert stored(ledger, "Account.Sent") == 1


def test_a_transfer_whose_insert_never_arrived_is_made_when_tried_again(ledger):
    failed = breaking_the_next_save(ledger, answer_lost=False)

    ledger.transfer(INVENTORY, "acme", 7)

    assert len(failed) == 1
    assert ledger.get_account("acme").balance == 7
    assert stored(ledger, "Account.Sent") == 1


@pytest.fixture
def market(postgres_url):
    app = Marketplace(database=postgres_url)
    yield app
    app.close()


def test_an_order_whose_commit_answer_was_lost_is_placed_once(market):
    # Placing an order holds its listing's turn: its save is the insert in the transaction
    # that holds it, committed with it in one round trip, not tried again.
    listing = seed_market(market, on_offer=100)
    market.ledger.open_account("org-acme", owner=BUYER)
    failed = breaking_the_next_save(market, answer_lost=True)

    order = market.place_order(listing, 4, BUYER, "org-acme")

    assert len(failed) == 1 and failed[0].in_turns
    assert market.get_order(order["order_id"]).tonnes == 4
    assert market.get_listing(listing).reserved == 4
    assert stored(market, "Order.Placed") == 1


def test_an_order_whose_save_never_arrived_is_refused_and_nothing_is_saved(market):
    listing = seed_market(market, on_offer=100)
    market.ledger.open_account("org-acme", owner=BUYER)
    failed = breaking_the_next_save(market, answer_lost=False)

    with pytest.raises(Exception, match=LOST):  # the web answers 503: nothing was saved
        market.place_order(listing, 4, BUYER, "org-acme")

    assert len(failed) == 1
    assert market.get_listing(listing).reserved == 0
    assert stored(market, "Order.Placed") == 0
    market.place_order(listing, 4, BUYER, "org-acme")  # and the listing's turn was given back
    assert market.get_listing(listing).reserved == 4
