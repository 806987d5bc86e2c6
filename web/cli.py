"""The ``kapok`` command line: demo data, ledger commands and the web server.

Errors print one line on stderr (``kapok: error: ...``) and exit non-zero: 2 for a malformed
command line, 1 for a command the ledger refuses, 3 when the database cannot be reached.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from decimal import Decimal, InvalidOperation

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.errors import LedgerError
from ledger.retirements import CLAIM_TYPES, USES, RetirementClaim
from ledger.serials import SerialRange
from ledger.settings import DatabaseURLError, database_url

EXIT_REFUSED, EXIT_USAGE, EXIT_DATABASE = 1, 2, 3

console = Console()


def open_ledger():
    from ledger.application import Ledger

    return Ledger(database=database_url())


def emit(rows, as_json: bool, columns: list[str], title: str | None = None) -> None:
    """Rows as a JSON array of objects, or as a table for people."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column == "quantity" else "left")
    for row in rows:
        table.add_row(*(f"{row[c]:,}" if isinstance(row[c], int) and c == "quantity" else str(row[c] if row[c] is not None else "")
                        for c in columns))
    console.print(table)


def emit_result(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for key, value in result.items():
        if isinstance(value, list):
            value = "\n  ".join(map(str, value))
            click.echo(f"{key}:\n  {value}")
        else:
            click.echo(f"{key}: {value}")


class SerialRangeType(click.ParamType):
    name = "SERIALS"

    def convert(self, value, param, ctx):
        if isinstance(value, SerialRange):
            return value
        try:
            return SerialRange.parse(value)
        except LedgerError as error:
            self.fail(str(error), param, ctx)


class DecimalType(click.ParamType):
    name = "DECIMAL"

    def convert(self, value, param, ctx):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not number.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


SERIALS = SerialRangeType()


def amount_options(function):
    function = click.option("--serials", type=SERIALS, help="An exact range: FIRST-LAST or a printed block serial.")(function)
    function = click.option("--quantity", type=int, help="Whole tonnes (tCO2e), oldest vintage first.")(function)
    return function


def idempotency_option(function):
    return click.option("--idempotency-key", help="Repeat-safe key: the same key returns the first result.")(function)


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


@click.group()
@click.version_option(package_name="kapok")
def cli():
    """Kapok: carbon credits from the Tambopata buffer zone, Peru.

    The store is KAPOK_DATABASE_URL (default sqlite:///./var/kapok.db).
    """


@cli.command()
def demo():
    """Seed the Tambopata demo projects, vintages, accounts and a first sale (repeatable)."""
    from ledger.demo import demo_steps

    ledger = open_ledger()
    steps = demo_steps(ledger)
    with _progress() as progress:
        task = progress.add_task("seeding", total=len(steps))
        for label, step in steps:
            progress.update(task, description=label)
            step()
            progress.advance(task)
    view = ledger.caught_up_view()
    total = sum(row["quantity"] for row in view.balances() if row["status"] != "retired")
    click.echo(f"Demo data ready in {database_url()}: {len(view.projects())} projects, "
               f"{len(view.issuances())} issuances, {total:,} t in circulation.")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--workers", default=2, type=click.IntRange(1, 64), show_default=True)
def serve(host, port, workers):
    """Run the web app under gunicorn."""
    os.environ.setdefault("KAPOK_DATABASE_URL", database_url())
    open_ledger().caught_up_view()  # create the tables once, before the workers race to
    click.echo(f"Kapok is running at http://{host}:{port}/  (store: {database_url()})")
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--workers", str(workers),
                               "--bind", f"{host}:{port}", "web:create_app()"])


@cli.group()
def ledger():
    """The registry: issue, transfer, retire, cancel, look up."""


@ledger.command("open-account")
@click.argument("name")
@click.option("--kind", type=click.Choice(["holding", "inventory"]), default="holding", show_default=True)
@click.option("--owner", default="", help="Organisation that owns the account.")
@json_option
def open_account(name, kind, owner, as_json):
    """Open an account."""
    emit_result(open_ledger().open_account(name, kind, owner), as_json)


@ledger.command("add-vintage")
@click.option("--project", required=True)
@click.option("--year", required=True, type=int)
@click.option("--label", "labels", multiple=True, help="CCB, CCP, CORSIA ... (repeatable)")
@json_option
def add_vintage(project, year, labels, as_json):
    """Add a vintage year to a project."""
    from ledger.projects import Vintage

    emit_result(open_ledger().add_vintage(project, Vintage(year, tuple(labels))), as_json)


@ledger.command()
@click.option("--project", required=True, help="Registry id, e.g. VCS-1067.")
@click.option("--vintage", required=True, type=int)
@click.option("--quantity", required=True, type=int, help="Whole tonnes (tCO2e).")
@click.option("--buffer-percent", type=DecimalType(), help="Share to the buffer pool (default: the project's).")
@click.option("--to", "to_account", help="Inventory account (default: the project's).")
@idempotency_option
@json_option
def issue(project, vintage, quantity, buffer_percent, to_account, idempotency_key, as_json):
    """Issue new credits for a project vintage as one serial batch."""
    result = open_ledger().issue(project, vintage, quantity, buffer_percent, to_account,
                                 idempotency_key=idempotency_key)
    emit_result(result, as_json)


@ledger.command()
@click.option("--from", "from_account", required=True)
@click.option("--to", "to_account", required=True)
@amount_options
@idempotency_option
@json_option
def transfer(from_account, to_account, quantity, serials, idempotency_key, as_json):
    """Transfer tonnes (oldest vintage first) or an exact serial range."""
    result = open_ledger().transfer(from_account, to_account, quantity, serials,
                                    idempotency_key=idempotency_key)
    emit_result(result, as_json)


@ledger.command()
@click.option("--account", required=True)
@amount_options
@click.option("--beneficiary", required=True, help="On whose behalf: this becomes public.")
@click.option("--reason", required=True, help="e.g. 'Environmental Benefit'.")
@click.option("--details", default="")
@click.option("--period-start", type=click.DateTime(["%Y-%m-%d"]), help="Consumption period start.")
@click.option("--period-end", type=click.DateTime(["%Y-%m-%d"]), help="Consumption period end.")
@click.option("--claim-type", type=click.Choice(CLAIM_TYPES), default="offset", show_default=True)
@click.option("--use", type=click.Choice(USES), default="voluntary", show_default=True)
@idempotency_option
@json_option
def retire(account, quantity, serials, beneficiary, reason, details, period_start, period_end,
           claim_type, use, idempotency_key, as_json):
    """Retire tonnes for good, on a beneficiary's behalf."""
    claim = RetirementClaim(
        beneficiary=beneficiary, reason=reason, details=details,
        period_start=_date(period_start), period_end=_date(period_end),
        claim_type=claim_type, use=use,
    )
    result = open_ledger().retire(account, claim, quantity, serials, idempotency_key=idempotency_key)
    emit_result(result, as_json)


@ledger.command()
@click.option("--account", required=True)
@amount_options
@click.option("--reason", required=True)
@idempotency_option
@json_option
def cancel(account, quantity, serials, reason, idempotency_key, as_json):
    """Cancel tonnes (operator), with a reason."""
    emit_result(open_ledger().cancel(account, reason, quantity, serials,
                                     idempotency_key=idempotency_key), as_json)


@ledger.command()
@click.option("--project", required=True)
@click.option("--quantity", required=True, type=int)
@click.option("--reason", required=True, help="The loss event, e.g. 'fire, March 2026'.")
@idempotency_option
@json_option
def reverse(project, quantity, reason, idempotency_key, as_json):
    """Record a reversal (loss event): cancel buffer units from the pool."""
    emit_result(open_ledger().reverse(project, quantity, reason,
                                      idempotency_key=idempotency_key), as_json)


@ledger.command()
@click.option("--account")
@click.option("--project")
@click.option("--vintage", type=int)
@click.option("--status", type=click.Choice(["held", "buffer", "reserved", "retired", "cancelled"]))
@json_option
def balances(account, project, vintage, status, as_json):
    """Balances by account, project, vintage and status."""
    rows = open_ledger().caught_up_view().balances(account, project, vintage, status)
    emit(rows, as_json, ["account", "project", "vintage", "status", "quantity"], "Balances (tCO2e)")


@ledger.command()
@json_option
def accounts(as_json):
    """Every account."""
    emit(open_ledger().caught_up_view().accounts(), as_json, ["name", "kind", "owner"], "Accounts")


@ledger.command()
@json_option
def projects(as_json):
    """Every registered project."""
    emit(open_ledger().caught_up_view().projects(), as_json,
         ["registry_id", "name", "project_type", "country", "proponent"], "Projects")


@ledger.command()
@click.argument("serial", type=SERIALS)
@json_option
def serial(serial, as_json):
    """Who holds SERIAL (a number, or a printed block serial's first number), and its history."""
    found = open_ledger().caught_up_view().serial_history(serial.first)
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    click.echo(f"serial {found['serial']}: {found['status']} in {found['account']} "
               f"(batch {found['batch']}, {found['project']} {found['vintage']})")
    rows = [{**row, "serials": f"{row['first_serial']}-{row['last_serial']}",
             "at": row["occurred_at"][:19]} for row in found["history"]]
    emit(rows, False, ["position", "event", "account", "counterparty", "reference", "serials", "at"],
         "History")


@ledger.command()
@click.argument("retirement_id")
@json_option
def retirement(retirement_id, as_json):
    """Show a retirement record."""
    record = open_ledger().get_retirement(retirement_id)
    result = {
        "retirement_id": record.retirement_id, "account": record.account,
        "quantity": record.quantity, "retired_at": record.created_on.isoformat(),
        "serials": [block.serial for block in record.blocks],
        **{key: value for key, value in record.claim.__dict__.items()},
    }
    emit_result(result, as_json)


def _date(value) -> date | None:
    return value.date() if value else None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


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
    except LedgerError as error:
        return fail(str(error), EXIT_REFUSED)
    except DatabaseURLError as error:
        return fail(str(error), EXIT_USAGE)
    except (PersistenceError, OSError) as error:
        return fail(f"database unavailable ({database_url()}): {error}", EXIT_DATABASE)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
