"""The ``kapok`` command line: demo data, ledger and audit commands, and the web server.

Errors print one line on stderr (``kapok: error: ...``) and exit non-zero: 2 for a malformed
command line, 1 for a command Kapok refuses, 3 when the database or a service Kapok depends on
cannot be reached. A refusal's code comes with its kind of error (ledger/error_codes.py).
"""

from __future__ import annotations

import os
import sys

import click

from ledger.domain.errors import KINDS, LedgerError
from ledger.error_codes import EXIT_UNAVAILABLE, codes_for
from market.domain.errors import MarketError
from ledger.settings import (KAPOK_REGISTRY_INBOX, KAPOK_SECRET_KEY, KAPOK_SECRET_KEY_FILE,
                             POSTGRES_APPLICATION_NAME,
                             SettingError, child_environment, database_url, local_secret)
from cli.audit_commands import audit
from cli.backup_commands import backup
from cli.ledger_commands import ledger
from cli.market_commands import market
from cli.output import open_ledger, progress_bar
from cli.registry_commands import reconcile_inbox, registry

EXIT_USAGE = 2


@click.group()
@click.version_option(package_name="kapok")
def cli():
    """Kapok: carbon credits from the Tambopata buffer zone, Peru.

    The store is KAPOK_DATABASE_URL (default sqlite:///./var/kapok.db).
    """


@cli.command()
def demo():
    """Seed the Tambopata demo: projects, vintages, accounts, a first sale, benefit-sharing
    rules, COOPASER farms and listings (repeatable)."""
    from ledger.demo import demo_steps
    from market.demo import market_demo_steps
    from market.domain.payments import OfflinePaymentProvider

    # The demo's own sales are test payments, whichever provider the site takes real ones with.
    ledger = open_ledger(payments=OfflinePaymentProvider())
    steps = demo_steps(ledger.ledger) + market_demo_steps(ledger)
    with progress_bar() as progress:
        task = progress.add_task("seeding", total=len(steps))
        for label, step in steps:
            progress.update(task, description=label)
            step()
            progress.advance(task)
    key_note = _ensure_demo_key()
    view = ledger.caught_up_view()
    from cli.audit_commands import follow_log

    _, head = follow_log(ledger)
    total = sum(row["quantity"] for row in view.balances() if row["status"] != "retired")
    click.echo(f"Demo data ready in {database_url()}: {len(view.projects())} projects, "
               f"{len(view.issuances())} issuances, {total:,} t in circulation, "
               f"{len(ledger.listings())} listings.")
    click.echo(f"{key_note}\nAudit log: {head.tree_size} events under a signed tree head.")
    from web.demo import seed_people
    from identity.application import Identity

    click.echo("Demo logins (demo only):")
    for role, email, password in seed_people(Identity(database_url())):
        click.echo(f"  {role:<9} {email:<32} {password}")


def _ensure_demo_key() -> str:
    """The demo signs tree heads with a key of its own, created once, outside the store."""
    from ledger.audit.keys import generate_key, public_key_file, signing_key_file

    path = signing_key_file()
    if path.exists():
        return f"Tree heads are signed with {path} (public key: {public_key_file(path)})."
    public = generate_key(path)
    return f"Created a DEMO signing key at {path}; its public key is {public}."


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--workers", default=2, type=click.IntRange(1, 64), show_default=True)
@click.option("--no-worker", is_flag=True,
              help="Do not run `kapok worker` beside it (signed tree heads, expiring "
                   "reservations); in production the Procfile runs it as its own process.")
def serve(host, port, workers, no_worker):
    """Run the web app under gunicorn (and, locally, the background worker beside it)."""
    # Local serving: plain http (no Secure cookies) and a session key kept in ./var so the
    # workers share it and log-ins survive a restart. Production sets KAPOK_SECRET_KEY.
    local = {"KAPOK_DATABASE_URL": database_url(), "KAPOK_ENV": "development"}
    if not KAPOK_SECRET_KEY.read():
        local["KAPOK_SECRET_KEY"] = local_secret(KAPOK_SECRET_KEY_FILE.read())
    env = child_environment(local)
    open_ledger().view  # create the tables once, before the workers race to
    from identity.application import Identity

    Identity(database_url())
    click.echo(f"Kapok is running at http://{host}:{port}/  (store: {database_url()})")
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:web.serving",
                "--workers", str(workers), "--bind", f"{host}:{port}", "web:create_app()"]
    if no_worker:
        os.execvpe(sys.executable, gunicorn, env)
    _run_with_worker(gunicorn, env)


def _run_with_worker(gunicorn: list[str], env: dict[str, str]) -> None:
    """gunicorn in the foreground and `kapok worker` beside it; both stop together."""
    import signal
    import subprocess

    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env)
    server = subprocess.Popen(gunicorn, env=env)
    stop = lambda *_: server.send_signal(signal.SIGTERM)  # noqa: E731 - a signal handler
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        code = server.wait()
    finally:
        worker.terminate()
        worker.wait(10)
    sys.exit(code)


@cli.command()
@click.option("--interval", default=2.0, type=click.FloatRange(min=0.1), show_default=True,
              help="Seconds between rounds of the audit log and of expiring reservations.")
@click.option("--once", is_flag=True, help="One round, then exit.")
def worker(interval, once):
    """Background work: the read model (eventsourcing's projection runner, the only writer
    of the view), the audit log (signed heads), expired reservations."""
    import threading

    from ledger.read.projection import WORKER_CONNECTIONS, keep_view_projected
    from cli.audit_commands import follow_log

    app = open_ledger(env={
        "POSTGRES_APPLICATION_NAME": POSTGRES_APPLICATION_NAME.read(default=WORKER_CONNECTIONS)})
    inbox = KAPOK_REGISTRY_INBOX.read()

    def reconcile_dropped_exports():
        if inbox is not None and inbox.is_dir():
            reconcile_inbox(app, inbox)

    if once:
        app.caught_up_view()
        _, head = follow_log(app, quiet=True)
        expired = app.expire_due_orders()
        reconcile_dropped_exports()
        click.echo(f"tree size {head.tree_size if head else 0}; {len(expired)} reservation(s) expired")
        return

    def rounds():
        follow_log(app, quiet=True)
        app.expire_due_orders()
        reconcile_dropped_exports()

    keep_view_projected(app.store, threading.Event(), every=interval, between=rounds)


cli.add_command(ledger)
cli.add_command(audit)
cli.add_command(market)
cli.add_command(backup)
cli.add_command(registry)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the command, turning every refusal into one line and an exit code."""
    from eventsourcing.persistence import PersistenceError

    def fail(message: str, code: int) -> int:
        click.echo(f"kapok: error: {message}", err=True)
        return code

    try:
        cli.main(args=argv, prog_name="kapok", standalone_mode=False)
    except click.exceptions.Abort:
        return fail("aborted", 130)
    except click.ClickException as error:
        return fail(error.format_message().replace("\n", " "), EXIT_USAGE)
    except (LedgerError, MarketError, *KINDS) as error:
        return fail(str(error), codes_for(error).exit_code)
    except SettingError as error:
        return fail(str(error), EXIT_USAGE)
    except (PersistenceError, OSError) as error:
        return fail(f"database unavailable ({database_url()}): {error}", EXIT_UNAVAILABLE)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())

