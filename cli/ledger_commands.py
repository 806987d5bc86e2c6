"""``kapok ledger``: the registry's commands."""

from __future__ import annotations

import json
from datetime import date

import click

from ledger.domain.retirements import CLAIM_TYPES, USES, RetirementClaim
from cli.output import (
    SERIALS,
    DecimalType,
    amount_options,
    emit,
    emit_result,
    idempotency_option,
    json_option,
    open_ledger,
)


@click.group()
def ledger():
    """The registry: issue, transfer, retire, cancel, look up."""


@ledger.command("open-account")
@click.argument("name")
@click.option("--kind", type=click.Choice(["holding", "inventory"]), default="holding", show_default=True)
@click.option("--owner", default="", help="Organisation that owns the account.")
@json_option
def open_account(name, kind, owner, as_json):
    """Open an account."""
    emit_result(open_ledger().ledger.open_account(name, kind, owner), as_json)


@ledger.command("add-vintage")
@click.option("--project", required=True)
@click.option("--year", required=True, type=int)
@click.option("--label", "labels", multiple=True, help="CCB, CCP, CORSIA ... (repeatable)")
@json_option
def add_vintage(project, year, labels, as_json):
    """Add a vintage year to a project."""
    from ledger.domain.projects import Vintage

    emit_result(open_ledger().ledger.add_vintage(project, Vintage(year, tuple(labels))), as_json)


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
    result = open_ledger().ledger.issue(project, vintage, quantity, buffer_percent, to_account,
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
    result = open_ledger().ledger.transfer(from_account, to_account, quantity, serials,
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
    result = open_ledger().ledger.retire(account, claim, quantity, serials,
                                         idempotency_key=idempotency_key)
    emit_result(result, as_json)


@ledger.command()
@click.option("--account", required=True)
@amount_options
@click.option("--reason", required=True)
@idempotency_option
@json_option
def cancel(account, quantity, serials, reason, idempotency_key, as_json):
    """Cancel tonnes (operator), with a reason."""
    emit_result(open_ledger().ledger.cancel(account, reason, quantity, serials,
                                            idempotency_key=idempotency_key), as_json)


@ledger.command()
@click.option("--project", required=True)
@click.option("--quantity", required=True, type=int)
@click.option("--reason", required=True, help="The loss event, e.g. 'fire, March 2026'.")
@idempotency_option
@json_option
def reverse(project, quantity, reason, idempotency_key, as_json):
    """Record a reversal (loss event): cancel buffer units from the pool."""
    emit_result(open_ledger().ledger.reverse(project, quantity, reason,
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
    record = open_ledger().ledger.get_retirement(retirement_id)
    result = {
        "retirement_id": record.retirement_id, "account": record.account,
        "quantity": record.quantity, "retired_at": record.created_on.isoformat(),
        "serials": [block.serial for block in record.blocks],
        **{key: value for key, value in record.claim.__dict__.items()},
    }
    emit_result(result, as_json)


def _date(value) -> date | None:
    return value.date() if value else None
