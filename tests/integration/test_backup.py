"""Backup and restore: the whole event log from SQLite into an empty PostgreSQL store and
back; every event byte for byte, so the audit log rebuilt there has the identical signed
root and verify passes. A damaged or altered backup, or a store that is not empty, is
refused with nothing written."""

from __future__ import annotations

import io
import json

import pytest

from ledger.audit.keys import SigningKey, generate_key
from ledger.audit.log import AuditLog
from ledger.audit.verification import verify
from ledger.adapters.backup import BackupError, restore_backup, write_backup
from market.application import Marketplace
from testbed.stores import seed_demo
from cli import main
from identity.application import Identity

pytestmark = pytest.mark.postgres


def stores(url: str) -> dict:
    return {"ledger": Marketplace(database=url), "identity": Identity(url)}


def close(apps: dict) -> None:
    for app in apps.values():
        app.close()


def backup_text(apps: dict) -> str:
    output = io.StringIO()
    write_backup(apps, output)
    return output.getvalue()


def restore_text(apps: dict, text: str) -> dict:
    return restore_backup(apps, lambda: iter(text.splitlines(keepends=True)))


@pytest.fixture
def key(tmp_path):
    generate_key(tmp_path / "key.pem")
    return SigningKey.load(tmp_path / "key.pem")


@pytest.fixture
def original(sqlite_url, key):
    seed_demo(sqlite_url)
    apps = stores(sqlite_url)
    head = AuditLog(apps["ledger"]).follow(key)
    yield apps, head
    close(apps)


def test_sqlite_to_postgres_and_back_keeps_every_event_and_the_signed_root(
        original, key, postgres_url, tmp_path):
    apps, head = original
    text = backup_text(apps)

    restored = stores(postgres_url)
    try:
        restore_text(restored, text)
        again = AuditLog(restored["ledger"]).follow(key)
        assert (again.tree_size, again.root_hash) == (head.tree_size, head.root_hash)
        assert verify(restored["ledger"], key.public_pem).ok
        assert restored["ledger"].caught_up_view().balances() == \
            apps["ledger"].caught_up_view().balances()
        # People and their logins come along (their store is backed up beside the ledger).
        assert restored["identity"].authenticate("buyer@andes-coffee.example",
                                                 "kapok-demo-buyer") is not None
        text_back = backup_text(restored)
    finally:
        close(restored)

    back = stores(f"sqlite:///{tmp_path}/back/kapok.db")
    try:
        restore_text(back, text_back)
        assert AuditLog(back["ledger"]).follow(key).root_hash == head.root_hash
        assert verify(back["ledger"], key.public_pem).ok
    finally:
        close(back)


def test_restoring_into_a_store_that_is_not_empty_is_refused(original):
    apps, _ = original
    with pytest.raises(BackupError, match="not empty"):
        restore_text(apps, backup_text(apps))


@pytest.mark.parametrize("damage", ["truncate", "alter an event", "drop an event", "junk"])
def test_a_damaged_or_altered_backup_is_refused_and_nothing_is_written(
        original, tmp_path, damage):
    apps, _ = original
    lines = backup_text(apps).splitlines(keepends=True)
    if damage == "truncate":
        lines = lines[:-1]
    elif damage == "alter an event":
        event = json.loads(lines[40])
        event["state"] = event["state"][:-4] + ("AAAA" if event["state"][-4:] != "AAAA" else "BBBB")
        lines[40] = json.dumps(event) + "\n"
    elif damage == "drop an event":
        del lines[40]
    else:
        lines[40] = "{not json\n"
    target = stores(f"sqlite:///{tmp_path}/target/kapok.db")
    try:
        with pytest.raises(BackupError):
            restore_text(target, "".join(lines))
        assert all(not app.recorder.max_notification_id() for app in target.values())
    finally:
        close(target)


def test_the_command_line_backs_up_and_restores(original, tmp_path, monkeypatch, capsys,
                                                sqlite_url):
    apps, head = original
    file = tmp_path / "backup.jsonl"
    monkeypatch.setenv("KAPOK_DATABASE_URL", sqlite_url)
    assert main(["backup", "create", str(file), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["ledger_root"] == head.root_hash.hex()

    monkeypatch.setenv("KAPOK_DATABASE_URL", f"sqlite:///{tmp_path}/new/kapok.db")
    assert main(["backup", "restore", str(file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger_events"] == made["ledger_events"]
    assert main(["backup", "restore", str(file)]) == 1  # not empty any more
    assert "not empty" in capsys.readouterr().err
