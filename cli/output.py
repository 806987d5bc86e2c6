"""What the command line shares: output as tables or JSON, progress bars, option types."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.domain.errors import LedgerError
from ledger.domain.serials import SerialRange
from ledger.settings import KAPOK_RESERVATION_MINUTES, database_url

console = Console()


def open_ledger(payments=None, env: dict[str, str] | None = None):
    """Kapok's application (the ledger with the market) on the configured store, paying
    through ``payments`` (default: the configured provider), with eventsourcing's settings
    ``env`` beside the store's."""
    from market.application import Marketplace
    from market.settings import payment_provider

    return Marketplace(env=env, database=database_url(),
                       payments=payments or payment_provider(),
                       reservation_minutes=KAPOK_RESERVATION_MINUTES.read())


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


def progress_bar() -> Progress:
    """A progress bar on stderr, shown only to a person at a terminal (not in pipes or logs)."""
    stderr = Console(stderr=True)
    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=stderr, disable=not stderr.is_terminal)
