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


def test_people_stored_when_their_module_was_web_identity_still_load(tmp_path):
    from identity.application import Identity

    url = f"sqlite:///{tmp_path / 'kapok.db'}"
    Identity(url).sign_up("Quinoa Textiles S.A.C.", "Ana", "ana@quinoa.example", "a long password")
    with sqlite3.connect(tmp_path / "kapok-identity.db") as connection:
        changed = connection.execute(
            "UPDATE stored_events SET topic = replace(topic, 'identity.domain:', 'web.identity:')"
        ).rowcount
    assert changed >= 2

    person = Identity(url).authenticate("ana@quinoa.example", "a long password")

    assert (person.name, person.organisation_name) == ("Ana", "Quinoa Textiles S.A.C.")
