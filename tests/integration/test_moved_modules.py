"""Events written before a module moved still load: their stored topic names the old one."""

from __future__ import annotations

import sqlite3

from ledger.application import Ledger


def test_events_stored_under_a_moved_modules_topic_still_load(tmp_path):
    database = tmp_path / "kapok.db"
    Ledger(database=f"sqlite:///{database}").open_account("quinoa-textiles", "holding", "Quinoa")
    with sqlite3.connect(database) as connection:  # as written before ledger/domain/ existed
        changed = connection.execute(
            "UPDATE stored_events SET topic = replace(topic, 'ledger.domain.', 'ledger.')"
        ).rowcount
    assert changed == 1

    account = Ledger(database=f"sqlite:///{database}").get_account("quinoa-textiles")

    assert (account.name, account.owner) == ("quinoa-textiles", "Quinoa")
