"""``kapok market``: listings, quotes, orders and the farms' proceeds."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from decimal import Decimal

import click

from ledger.domain.retirements import CLAIM_TYPES, RetirementClaim
from cli.output import DecimalType, emit, emit_result, json_option, open_ledger


def _plain(value):
    return str(value) if isinstance(value, Decimal) else value


@click.group()
def market():
    """Listings, quotes, orders and the proceeds routed to AIDER's farms."""


@market.command("list")
@json_option
def list_listings(as_json):
    """Every listing with its price, availability, buffer share and labels."""
    from market.domain.listings import listing_summary

    app = open_ledger()
    rows = []
    for listing in app.listings():
        summary = listing_summary(listing, app.ledger.get_project(listing.project_registry_id))
        rows.append({key: _plain(value) for key, value in summary.items()})
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = [{**row, "price": f"{row['currency']} {row['price_per_tonne']}",
              "labels": ", ".join(row["labels"]), "buffer": f"{row['buffer_percent']}%",
              "listing": row["listing_id"][:8]} for row in rows]
    emit(table, False, ["listing", "project_registry_id", "vintage_year", "price", "available",
                        "status", "buffer", "labels"], "Listings")


@market.command()
@click.option("--listing", "listing_id", required=True, help="Listing id (see `kapok market list`).")
@click.option("--tonnes", type=int, help="Whole tonnes to buy.")
@click.option("--amount", nargs=2, metavar="AMOUNT CURRENCY", help="A budget, e.g. --amount 500 USD.")
@click.option("--estimate", "estimate_file", type=click.Path(exists=True, dir_okay=False),
              help="Activities (JSON or CSV) to estimate emissions from; see market/domain/estimates.py.")
@json_option
def quote(listing_id, tonnes, amount, estimate_file, as_json):
    """Price a purchase by tonnes, by money, or from an emissions estimate."""
    from market.domain.estimates import activities_from_file, estimate
    from market.domain.money import parse

    asked = [tonnes is not None, amount is not None, estimate_file is not None]
    if sum(asked) != 1:
        raise click.UsageError("give exactly one of --tonnes, --amount or --estimate")
    app = open_ledger()
    listing_id = _listing_id(app, listing_id)
    found = None
    if estimate_file:
        found = estimate(activities_from_file(estimate_file))
        result = app.quote(listing_id, estimate=found)
    elif amount:
        result = app.quote(listing_id, amount=parse(amount[0], amount[1].upper()))
    else:
        result = app.quote(listing_id, tonnes=tonnes)
    data = {key: _plain(value) for key, value in asdict(result).items()}
    data["total"] = str(result.total)
    if found is not None:
        data["estimated_kg_co2e"] = str(found.total_kg)
    emit_result({k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if not isinstance(v, (int, str)) else v)
                 for k, v in data.items()}, as_json)


@market.command()
@click.option("--listing", "listing_id", required=True)
@click.option("--tonnes", required=True, type=int)
@click.option("--buyer-org", required=True, help="The buying organisation.")
@click.option("--account", "buyer_account", required=True, help="The buyer's ledger account (opened if new).")
@click.option("--retire", is_flag=True, help="Retire the tonnes on the buyer's behalf at delivery.")
@click.option("--beneficiary", help="With --retire: on whose behalf (becomes public).")
@click.option("--reason", default="Environmental Benefit", show_default=True)
@click.option("--claim-type", type=click.Choice(CLAIM_TYPES), default="offset", show_default=True)
@click.option("--idempotency-key")
@json_option
def order(listing_id, tonnes, buyer_org, buyer_account, retire, beneficiary, reason, claim_type,
          idempotency_key, as_json):
    """Reserve tonnes for a buyer (held in escrow until paid or expired)."""
    claim = None
    if retire:
        claim = RetirementClaim(beneficiary=beneficiary or buyer_org, reason=reason,
                                claim_type=claim_type)
    app = open_ledger()
    result = app.place_order(_listing_id(app, listing_id), tonnes, buyer_org, buyer_account,
                             claim, idempotency_key=idempotency_key)
    emit_result(result, as_json)


@market.command()
@click.argument("order_id")
def pay(order_id):
    """Pay an order with the offline TEST provider (demo only) and deliver it."""
    app = open_ledger()
    outcome = app.pay_offline(order_id)
    click.echo(f"TEST PAYMENT (offline provider, no money moved): order {order_id.upper()} {outcome}")


@market.command()
@click.argument("order_id")
@click.option("--reason", required=True, help="Why (kept with the order).")
@click.option("--keep-credits", is_flag=True,
              help="Refund without taking the credits back (e.g. they were retired).")
@json_option
def refund(order_id, reason, keep_credits, as_json):
    """Refund a paid or fulfilled order through the payment provider; the proceeds are
    withdrawn from every payee and the credits come back to the inventory."""
    app = open_ledger()
    emit_result(app.refund_order(order_id, reason, recover_credits=not keep_credits), as_json)


@market.command()
@click.argument("order_id")
@click.option("--reason", default="reservation released by an operator", show_default=True,
              help="Why (kept with the order).")
@json_option
def release(order_id, reason, as_json):
    """End a reserved order's reservation now: the order is cancelled and its tonnes go back
    to the listing."""
    emit_result(open_ledger().release_reservation(order_id, reason), as_json)


@market.command()
@click.option("--per-listing", type=int, help="Most tonnes one organisation may hold reserved "
                                               "on a listing without a cap of its own.")
@click.option("--per-organisation", type=int,
              help="Most tonnes one organisation may hold reserved on every listing together.")
@json_option
def caps(per_listing, per_organisation, as_json):
    """Show the reservation caps, or set them (give both)."""
    app = open_ledger()
    if per_listing is not None or per_organisation is not None:
        if per_listing is None or per_organisation is None:
            raise click.UsageError("give both --per-listing and --per-organisation")
        app.set_reservation_caps(per_listing, per_organisation)
    current = app.reservation_caps()
    emit_result({"per_listing": current.per_listing,
                 "per_organisation": current.per_organisation}, as_json)


@market.command("order-status")
@click.argument("order_id")
@json_option
def order_status(order_id, as_json):
    """Show an order."""
    app = open_ledger()
    emit_result(app.order_summary(app.get_order(order_id)), as_json)


@market.command()
def expire():
    """Release every reservation past its time (the worker does this continuously)."""
    expired = open_ledger().expire_due_orders()
    click.echo(f"{len(expired)} reservation(s) expired" + (f": {', '.join(expired)}" if expired else ""))


@market.command()
@click.option("--project", required=True)
@json_option
def farms(project, as_json):
    """The farms of a project and the share weight each gets of the farmers' part."""
    rows = [{"farm": farm.farm_code, "family": farm.details.farmer_name,
             "forest_ha": str(farm.details.forest_ha),
             "agroforestry_ha": str(farm.details.agroforestry_ha),
             "active": farm.active} for farm in open_ledger().farms(project)]
    emit(rows, as_json, ["farm", "family", "forest_ha", "agroforestry_ha", "active"], f"Farms of {project}")


@market.command()
@click.option("--currency", default="USD", show_default=True)
@click.option("--recipient", help="e.g. farmers, aider-field-programme, ecosphere-fee.")
@click.option("--farm", "farm_code", help="A farm code (recipient farmers).")
@click.option("--project", help="Only that project's sales and refunds (e.g. KAP-AF-01).")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@json_option
def payouts(currency, recipient, farm_code, project, start, end, as_csv, as_json):
    """Statement of what was allocated, paid out and is owed, per farm, partner, project and
    period (refunds show as negative allocations)."""
    from cli.audit_commands import neutralised_row

    view = open_ledger().caught_up_view()
    if farm_code and not recipient:
        recipient = "farmers"
    rows = [asdict(row) for row in view.statement(
        currency.upper(), recipient, farm_code, start.date() if start else None,
        end.date() if end else None, project=project.upper() if project else None)]
    for row in rows:
        row["on"] = row["on"].isoformat()
    columns = ["on", "kind", "reference", "project", "recipient", "farm_code", "allocated",
               "paid_out", "owed"]
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(neutralised_row([row[c] for c in columns]))
        return
    emit(rows, as_json, columns, f"Proceeds statement ({currency.upper()}, minor units)")


@market.command()
@click.option("--currency", default="USD", show_default=True)
@click.option("--recipient", required=True)
@click.option("--farm", "farm_code")
@click.option("--amount", required=True, type=DecimalType(), help="e.g. 120.50")
@click.option("--date", "paid_on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--reference", required=True, help="Bank or transfer reference.")
@json_option
def payout(currency, recipient, farm_code, amount, paid_on, reference, as_json):
    """Record money paid out to a farm or partner."""
    from market.domain.money import Money

    minor = Money(amount, currency.upper()).minor
    result = open_ledger().record_payout(currency.upper(), recipient, farm_code, minor,
                                         paid_on.date(), reference)
    emit_result(result, as_json)


def _listing_id(app, text: str) -> str:
    """A full listing id, or an unambiguous prefix of one (as `market list` shows)."""
    matches = [str(listing.id) for listing in app.listings() if str(listing.id).startswith(text.lower())]
    if len(matches) == 1:
        return matches[0]
    return text  # unknown or ambiguous: the market names the problem
