"""``kapok registry``: projects mirrored from Verra, their imports, retirements and checks.

Exit codes: 0 when nothing was refused (import) or Kapok is in step (reconcile), 1 when a row
was refused or something differs, 2 for a malformed command line or a file that is not a
Verra export.
"""

from __future__ import annotations

import json
from datetime import date

import click

from cli.output import emit, emit_result, json_option, open_ledger
from ledger.adapters.verra_export import ExportFormatError, read_export
from ledger.domain.errors import InvalidCommandError, LedgerError
from ledger.settings import KAPOK_REGISTRY_PENDING_DAYS
from ledger.usecases.registry_imports import verra_number

EXPORT = click.Path(exists=True, dir_okay=False, readable=True)


@click.group()
def registry():
    """Projects whose registry of record is Verra: import, reconcile, confirm, fail."""


def export_reader(path: str, registry_id: str):
    """A function that reads the export's rows afresh (the importer reads it twice)."""
    number = verra_number(registry_id)

    def rows():
        with open(path, encoding="utf-8", newline="") as stream:
            yield from read_export(stream, number)

    return rows


def _usage_on_bad_file(run):
    try:
        return run()
    except ExportFormatError as error:
        raise click.UsageError(str(error)) from None
    except UnicodeDecodeError:
        raise click.UsageError("not a Verra VCU export: the file is not UTF-8 text") from None


def _mirrored_project(ctx, param, value: str) -> str:
    try:
        verra_number(value)
    except InvalidCommandError as error:
        raise click.BadParameter(str(error)) from None
    return value.strip().upper()


project_option = click.option("--project", required=True, callback=_mirrored_project,
                              help="The mirrored project, VCS-<id>.")


@registry.command("import")
@click.argument("file", type=EXPORT)
@project_option
@click.option("--account", help="Kapok account holding the active blocks (default: the "
                                "project's, Ecosphere+'s Verra holding).")
@json_option
def import_export(file, project, account, as_json):
    """Import a project's rows of Verra's VCU export (CSV): every block with Verra's serials.
    Importing the same file again changes nothing; a file with a refused row writes nothing."""
    app = open_ledger()
    report = _usage_on_bad_file(lambda: app.ledger.import_registry_export(
        export_reader(file, project), project, account))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_import(report)
    if report["refused"]:
        raise SystemExit(1)


def _print_import(report: dict) -> None:
    click.echo(f"{report['project']}: {report['rows']} row(s), {report['skipped']} of other "
               f"projects skipped; {report['blocks_new']} new block(s) "
               f"({report['tonnes_new']:,} t), {report['blocks_known']} known, "
               f"{report['retired_at_verra']} retired at Verra")
    for retirement_id in report["confirmed"]:
        click.echo(f"confirmed at Verra: {retirement_id}")
    for refusal in report["refused"]:
        click.echo(f"line {refusal['line']}: {refusal['serial']}: {refusal['why']}", err=True)
    if report["refused"]:
        click.echo(f"{len(report['refused'])} row(s) refused: nothing was imported", err=True)


@registry.command()
@click.argument("file", type=EXPORT)
@project_option
@click.option("--pending-days", type=click.IntRange(0, 3650), default=None,
              help="Report pending retirements still active at Verra after this many days "
                   "(default: KAPOK_REGISTRY_PENDING_DAYS).")
@json_option
def reconcile(file, project, pending_days, as_json):
    """Compare a newer Verra export with Kapok: report every difference, confirm pending
    retirements Verra shows retired, and take serials Verra shows retired off sale."""
    app = open_ledger()
    days = KAPOK_REGISTRY_PENDING_DAYS.read() if pending_days is None else pending_days
    result = _usage_on_bad_file(lambda: app.ledger.reconcile_registry(
        export_reader(file, project), project, days, source=file))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _print_reconcile(result)
    if not result["in_step"]:
        raise SystemExit(1)


def _print_reconcile(result: dict) -> None:
    state = "in step with Verra" if result["in_step"] else "NOT in step with Verra"
    click.echo(f"{result['project']}: {state} (run {result['run_id']}); "
               f"{result['confirmed']} pending retirement(s) confirmed")
    for difference in result["differences"]:
        held = "; ".join(f"{h['account']} {h['tonnes']:,} t {h['action']}"
                         for h in difference.get("held_by", ()))
        click.echo(f"{difference['kind']}: {difference['serial']} "
                   f"({difference['tonnes']:,} t){' - ' + held if held else ''}")


@registry.command()
@click.argument("retirement_id")
@click.option("--verra-serial", "serials", multiple=True, required=True,
              help="Verra's serial of a block it retired (repeat for several blocks).")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="When Verra retired them (default: today).")
@json_option
def confirm(retirement_id, serials, on, as_json):
    """Record Verra's confirmation of a pending retirement."""
    day = on.date() if on else date.today()
    emit_result(open_ledger().ledger.confirm_registry_retirement(
        retirement_id, list(serials), day), as_json)


@registry.command()
@click.argument("retirement_id")
@click.option("--reason", required=True, help="Why Verra refused it.")
@json_option
def fail(retirement_id, reason, as_json):
    """Record that Verra refused a pending retirement: the credits go back."""
    emit_result(open_ledger().ledger.fail_registry_retirement(retirement_id, reason), as_json)


@registry.command()
@json_option
def pending(as_json):
    """Retirements pending at Verra, oldest first."""
    rows = open_ledger().caught_up_view().pending_retirement_rows()
    emit(rows, as_json, ["retirement_id", "account", "beneficiary", "quantity", "retired_at"],
         "Pending at Verra")


@registry.command()
@click.option("--project", help="Only this project's runs.")
@json_option
def checks(project, as_json):
    """Reconciliation runs, newest first."""
    rows = open_ledger().caught_up_view().registry_checks(project)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    emit([{**row, "differences": len(row["differences"])} for row in rows], False,
         ["run_id", "project", "in_step", "differences", "confirmed", "checked_at"],
         "Reconciliation runs")


def reconcile_inbox(app, folder, echo=click.echo) -> list[dict]:
    """Reconciles each export dropped in ``folder`` as ``VCS-<id>*.csv`` with its project,
    once: the file then moves to ``done/`` (or ``refused/`` when it cannot be read, or its
    project is not mirrored). Returns the runs."""
    import re
    from pathlib import Path

    runs = []
    folder = Path(folder)
    for path in sorted(folder.glob("*.csv"), key=lambda found: found.stat().st_mtime):
        match = re.match(r"(VCS-[0-9]{1,9})\b", path.name, re.IGNORECASE | re.ASCII)
        outcome = "refused"
        try:
            if match is None:
                raise ExportFormatError("name it VCS-<id>...csv after its project")
            project = match.group(1).upper()
            result = app.ledger.reconcile_registry(
                export_reader(str(path), project), project,
                KAPOK_REGISTRY_PENDING_DAYS.read(), source=path.name)
            runs.append(result)
            outcome = "done"
            echo(f"{path.name}: {project} {'in step' if result['in_step'] else 'differs'} "
                 f"(run {result['run_id']})")
        except (ExportFormatError, UnicodeDecodeError, LedgerError) as error:
            echo(f"{path.name}: not reconciled: {error}", err=True)
        target = folder / outcome
        target.mkdir(exist_ok=True)
        path.replace(target / path.name)
    return runs
