"""The read model after an upgrade, on SQLite and PostgreSQL: tables made by an older version
are dropped and rebuilt from the event log; tables the code still declares are left alone."""

from __future__ import annotations

import pytest

from ledger.demo import demo_steps
from market.application import Marketplace
from market.demo import market_demo_steps

# kapok_orders as an older version made it: no unit price, no serials.
OLDER_ORDERS = """CREATE TABLE kapok_orders (
    aggregate_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, buyer_org TEXT NOT NULL,
    buyer_account TEXT NOT NULL, listing_id TEXT NOT NULL, project TEXT NOT NULL,
    vintage INTEGER NOT NULL, tonnes BIGINT NOT NULL, total_minor BIGINT NOT NULL,
    currency TEXT NOT NULL, retire INTEGER NOT NULL, state TEXT NOT NULL,
    placed_at TEXT NOT NULL, updated_at TEXT NOT NULL, reserved_until TEXT,
    payment_id TEXT, delivery_reference TEXT)"""


@pytest.fixture
def demo_store(database_url):
    """A store seeded with the demo, its view caught up; yields the URL."""
    market = Marketplace(database=database_url)
    for _label, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    market.caught_up_view()
    market.close()
    yield database_url


def read_model(market: Marketplace) -> dict:
    view = market.caught_up_view()
    return {"orders": view.orders(limit=1000), "balances": view.balances(),
            "statement": view.statement("USD"), "position": view.position()}


def make_older(url: str, forget_fingerprint: str) -> None:
    """Turns the store's view into one an older version left: another fingerprint (or none,
    as before fingerprints were kept), an orders table with fewer columns and no proceeds
    postings table; the position stays."""
    market = Marketplace(database=url)
    with market.factory.datastore.transaction(commit=True) as cursor:
        cursor.execute(forget_fingerprint)
        cursor.execute("DROP TABLE kapok_orders")
        cursor.execute(OLDER_ORDERS)
        cursor.execute("DROP TABLE kapok_proceeds_postings")
    market.close()


@pytest.mark.parametrize("forget_fingerprint", [
    "UPDATE kapok_view_schema SET fingerprint = 'older'", "DELETE FROM kapok_view_schema"])
def test_a_view_made_by_an_older_version_is_rebuilt_from_the_log(demo_store, forget_fingerprint):
    before = Marketplace(database=demo_store)
    expected = read_model(before)
    before.close()
    assert expected["orders"][1] > 0 and expected["statement"]  # the demo sold something
    make_older(demo_store, forget_fingerprint)

    upgraded = Marketplace(database=demo_store)
    assert upgraded.view.position() == 0  # reset: the next catch-up replays from the start
    assert read_model(upgraded) == expected
    upgraded.close()


def test_an_unchanged_view_is_not_rebuilt(demo_store):
    first = Marketplace(database=demo_store)
    position = first.view.position()
    first.close()
    assert position > 0

    again = Marketplace(database=demo_store)
    assert again.view.position() == position  # nothing to replay before the first catch-up
    again.close()
