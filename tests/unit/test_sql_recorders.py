"""How a projection's tables are named for dropping and fingerprinted for rebuilding."""

from ledger.adapters.sql_recorders import drop_statements, tables_fingerprint
from ledger.read.view import TABLES
from market.read.view import MarketView

INDEXED = [
    "CREATE TABLE IF NOT EXISTS kapok_things (thing TEXT PRIMARY KEY, size BIGINT)",
    "CREATE INDEX IF NOT EXISTS kapok_things_size ON kapok_things (size)",
    "create unique index kapok_things_upper on kapok_things (upper(thing))",
]


def test_every_table_and_index_a_view_creates_is_dropped_indexes_first():
    assert drop_statements(INDEXED) == [
        "DROP INDEX IF EXISTS kapok_things_size",
        "DROP INDEX IF EXISTS kapok_things_upper",
        "DROP TABLE IF EXISTS kapok_things",
    ]


def test_the_market_view_drops_the_order_book_and_postings_but_not_the_fingerprints():
    dropped = " ".join(drop_statements(MarketView.tables))
    for table in ("kapok_orders", "kapok_proceeds_postings", "kapok_balances"):
        assert f"DROP TABLE IF EXISTS {table}" in dropped
    assert "kapok_view_schema" not in dropped


def test_a_fingerprint_changes_with_a_definition_but_not_with_its_layout():
    rewrapped = [" ".join(sql.split()).replace(", ", ",\n    ") for sql in TABLES]
    assert tables_fingerprint(rewrapped) == tables_fingerprint(TABLES)
    assert tables_fingerprint(MarketView.tables) != tables_fingerprint(TABLES)
    widened = [TABLES[0].replace("owner TEXT NOT NULL", "owner TEXT NOT NULL, since TEXT")]
    assert tables_fingerprint(widened + TABLES[1:]) != tables_fingerprint(TABLES)
