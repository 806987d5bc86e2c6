"""``kapok backup``: every stored event to a file, and back into a new store (SQLite or
PostgreSQL), checked by count and Merkle root before anything is written."""

from __future__ import annotations

import click

from ledger.settings import database_url
from cli.output import emit_result, json_option, open_ledger, progress_bar


def _stores() -> dict:
    from identity.application import Identity

    return {"ledger": open_ledger(), "identity": Identity(database_url())}


@click.group()
def backup():
    """Back up the event stores (ledger and market; people and logins) and restore them."""


@backup.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@json_option
def create(file, as_json):
    """Write every stored event of KAPOK_DATABASE_URL to FILE (JSON lines)."""
    from ledger.adapters.backup import write_backup

    stores = _stores()
    total = sum(app.recorder.max_notification_id() or 0 for app in stores.values())
    with open(file, "w", encoding="utf-8") as output, progress_bar() as bar:
        task = bar.add_task("backing up", total=total)
        summary = write_backup(stores, output, progress=lambda n: bar.advance(task, n))
    emit_result(_flat(file, summary), as_json)


def _flat(file: str, summary: dict[str, dict]) -> dict:
    """{"file", "ledger_events", "ledger_root", "identity_events", ...} for one table."""
    return {"file": file, **{f"{name}_{key}": value for name, facts in summary.items()
                             for key, value in facts.items()}}


@backup.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
def restore(file, as_json):
    """Restore FILE into the empty store KAPOK_DATABASE_URL; the audit log rebuilt there
    has the same root (`kapok audit verify` then checks it against the same key)."""
    from ledger.adapters.backup import restore_backup

    stores = _stores()

    def lines():
        with open(file, encoding="utf-8") as handle:
            yield from handle

    with progress_bar() as bar:
        task = bar.add_task("restoring", total=None)
        summary = restore_backup(stores, lines, progress=lambda n: bar.advance(task, n))
    stores["ledger"].caught_up_view()  # the read model, rebuilt from the restored events
    emit_result(_flat(file, summary), as_json)
