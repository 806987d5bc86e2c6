"""Reconciling a mirrored project with a newer export of its registry of record (Verra's).

Every difference is reported with its serials and tonnes. Serials Kapok holds that Verra shows
retired or cancelled are the double-counting alarm: they leave every account that could sell
or retire them (into the registry's quarantine) and the market's offer, in the same save.
Pending retirements Verra shows retired are confirmed by the same run. The run itself is
recorded in the event log, so auditors can read every run and the console the last one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Callable, Iterable

from ledger.domain.accounts import ESCROW, QUARANTINE, REGISTRY_QUARANTINE, Account
from ledger.domain.errors import UnknownAccountError, UnknownProjectError
from ledger.domain.ids import public_id
from ledger.domain.mirror import (CONFLICT, NEW, RETIRED, RETIRED_INSIDE_ACTIVE, MirroredVintage,
                                  RegistryCheck)
from ledger.domain.retirements import CONFIRMED
from ledger.domain.serials import SerialBlock
from ledger.domain.verra import parse_verra_serial
from ledger.usecases.registry_imports import (REFUSED, SKIPPED, block_key,
                                              confirmed_retirement, registry_range, row_kind,
                                              standing_of, verra_number)

# Kinds of difference, as `kapok registry reconcile --json` names them.
RETIRED_AT_REGISTRY = "retired_at_registry"  # Kapok holds serials Verra shows retired
PENDING_OVERDUE = "pending_still_active"  # a pending retirement still active at Verra
UNKNOWN_AT_KAPOK = "unknown_at_kapok"  # serials at Verra that Kapok never imported
QUANTITY_DIFFERS = "quantity_differs"  # ranges or batch totals that do not match
MISSING_AT_REGISTRY = "missing_at_registry"  # a batch Kapok knows that the export lacks
UNREADABLE = "unreadable_row"  # a row of the project the reader refused


class Reconciliation:
    """Use cases of reconciliation (needs ``self.store``, ``self.view``, ``get_account``,
    ``get_project``, ``get_retirement``, ``pending_registry_blocks`` and ``sale_side``)."""

    def reconcile_registry(self, read_rows: Callable[[], Iterable], registry_id: str,
                           pending_days: int = 14, source: str = "",
                           today: date | None = None) -> dict:
        """Compares a newer export with what Kapok records of a mirrored project; acts on
        what it must (see the module) and records the run. Returns
        ``{"in_step", "differences", "confirmed", "run_id", ...}``."""
        registry_id = registry_id.strip().upper()
        number = verra_number(registry_id)
        project = self.get_project(registry_id)  # raises UnknownProjectError
        if not project.details.mirrored:
            raise UnknownProjectError(f"project {registry_id} is not mirrored from a registry")
        today = today or date.today()
        pending = self.pending_registry_blocks()
        differences, retired_rows, confirming = [], [], defaultdict(list)
        shown_retired: set[tuple[int, int, int]] = set()  # rows retired at the registry
        totals: dict[tuple[int, int], int] = defaultdict(int)  # (vintage, batch) -> tonnes
        known_of: dict[int, MirroredVintage | None] = {}  # each vintage read once per run
        for row in read_rows():
            kind = row_kind(row, number)
            if kind == SKIPPED:
                continue
            if kind == REFUSED:
                differences.append({"kind": UNREADABLE, "serial": row.serial,
                                    "tonnes": 0, "line": row.line, "why": row.why})
                continue
            if row.vintage not in known_of:
                known_of[row.vintage] = self._mirrored_vintage(registry_id, row.vintage)
            known = known_of[row.vintage]
            found = registry_range(row)
            standing = standing_of(known, row)
            totals[row.vintage, found.batch] += found.quantity
            if found.state == RETIRED:
                shown_retired.add(block_key(row))
            difference = {"serial": row.serial.text, "tonnes": found.quantity,
                          "line": row.line, "state_at_registry": found.state}
            retirement_id = (confirmed_retirement(pending, row)
                             if standing == RETIRED_INSIDE_ACTIVE else None)
            if retirement_id is not None:
                confirming[retirement_id].append(row)
                retired_rows.append(row)
            elif standing == RETIRED_INSIDE_ACTIVE:
                differences.append(difference | {"kind": RETIRED_AT_REGISTRY,
                                                 "retired_on": row.retired_on.isoformat()})
                retired_rows.append(row)
            elif standing == NEW:
                differences.append(difference | {"kind": UNKNOWN_AT_KAPOK})
                if found.state == RETIRED:
                    retired_rows.append(row)
            elif standing == CONFLICT:
                differences.append(difference | {"kind": QUANTITY_DIFFERS, "known": [
                    f"{first}-{last} {state}" for first, last, state in
                    known.known_ranges(found.batch, found.first, found.last)]})
        differences += self._batch_totals(registry_id, totals)
        differences += self._overdue(pending, set(confirming), shown_retired,
                                     today - timedelta(days=pending_days))
        run_id = public_id("KAP-REC")
        confirmed = self._act(registry_id, run_id, retired_rows, confirming, differences,
                              source)
        return {"run_id": run_id, "project": registry_id, "in_step": not differences,
                "differences": differences, "confirmed": confirmed}

    def _batch_totals(self, registry_id: str, totals: dict) -> list[dict]:
        """Batches whose serials at Verra add up to other tonnes than Kapok knows, and
        batches Kapok knows that the export does not show."""
        found = []
        for vintage in self.get_project(registry_id).vintages:
            known = self._mirrored_vintage(registry_id, vintage)
            if known is None:
                continue
            for batch, (firsts, lasts, _states) in known.batches.items():
                at_kapok = sum(lasts) - sum(firsts) + len(firsts)
                shown = totals.get((vintage, int(batch)))
                if shown is None:
                    found.append({"kind": MISSING_AT_REGISTRY, "serial": f"batch {batch}",
                                  "tonnes": at_kapok, "vintage": vintage})
                elif shown != at_kapok:
                    found.append({"kind": QUANTITY_DIFFERS, "serial": f"batch {batch}",
                                  "tonnes": shown - at_kapok, "vintage": vintage,
                                  "at_registry": shown, "at_kapok": at_kapok})
        return found

    def _overdue(self, pending: dict, confirming: set[str], shown_retired: set,
                 before: date) -> list[dict]:
        """The blocks of retirements pending since before ``before`` that the export does
        not show retired (those it shows retired for their beneficiary, this run confirms;
        for another, they are an alarm of their own)."""
        found = []
        for retirement_id in sorted({value[0] for value in pending.values()} - confirming):
            retirement = self.get_retirement(retirement_id)
            recorded_on = retirement.created_on
            if recorded_on.date() > before:
                continue
            for block in retirement.blocks:
                if block.mirrored and (block.batch, block.first, block.last) not in shown_retired:
                    found.append({"kind": PENDING_OVERDUE, "serial": block.serial,
                                  "tonnes": block.quantity, "retirement_id": retirement_id,
                                  "pending_since": recorded_on.date().isoformat()})
        return found

    def _act(self, registry_id: str, run_id: str, retired_rows: list, confirming: dict,
             differences: list[dict], source: str) -> int:
        """One save: the retired ranges recorded, matching pending retirements confirmed,
        serials held against Verra's word quarantined and off sale, the run recorded."""
        alarms = [d for d in differences if d["kind"] == RETIRED_AT_REGISTRY]
        holders = self._holders_of(registry_id) if alarms else []

        def command():
            changed: dict = {}
            by_vintage = defaultdict(list)
            for row in retired_rows:
                by_vintage[row.vintage].append(registry_range(row))
            for vintage, ranges in by_vintage.items():
                known = self._vintage_for(registry_id, vintage)
                known.record(tuple(ranges), run_id)
                changed[known.id] = known
            confirmed = 0
            for retirement_id, rows in confirming.items():
                key, retirement = self._confirmed_by(retirement_id, rows, f"reconcile {run_id}")
                changed[key] = retirement
                confirmed += retirement.registry_phase == CONFIRMED
            if alarms:
                changed.update(self._quarantine(holders, alarms, run_id))
            check = RegistryCheck(run_id, registry_id, source, tuple(differences), confirmed)
            changed[check.id] = check
            return list(changed.values()), confirmed

        return self.store.run("reconcile_registry", {}, None, command)

    def _holders_of(self, registry_id: str) -> list[str]:
        """Accounts that hold, or hold for an order, tonnes of the project (the read model's
        word; the command checks each account's own blocks)."""
        rows = self.caught_up_view().balances(project=registry_id)
        return sorted({row["account"] for row in rows
                       if row["status"] in ("held", "reserved") and row["quantity"] > 0})

    def _quarantine(self, holders: list[str], alarms: list[dict], run_id: str) -> dict:
        """Moves the alarmed serials out of every account that holds them into the
        registry's quarantine, and the market's offer with them. An order that reserved some
        of them is cancelled (the rest of its serials go back on offer): paid, it would
        deliver them."""
        wanted = defaultdict(list)  # (batch, tail) -> [(first, last)]
        for alarm in alarms:
            serial = parse_verra_serial(alarm["serial"])
            wanted[serial.batch, serial.tail].append((serial.first, serial.last))
        changed = {}
        quarantine = self._quarantine_account()
        accounts = []
        for name in holders:
            try:
                accounts.append(self.get_account(name))
            except UnknownAccountError:
                continue
        for holder in accounts:
            taken = overlapping(holder.blocks, wanted)
            if not taken:
                continue
            withdrawn = [] if holder.kind == ESCROW else self.sale_side.off_sale(holder, taken)
            holder.send(taken, quarantine.name, run_id)
            quarantine.receive(taken, holder.name, run_id)
            if holder.kind == ESCROW:
                withdrawn = self.sale_side.release_reserved(
                    holder, f"Verra shows serials of this order retired (reconciliation "
                            f"{run_id}): its reservation was cancelled")
            alarm_accounts(alarms, taken, holder.name, "quarantined; order cancelled"
                           if holder.kind == ESCROW and withdrawn else "quarantined")
            changed.update((aggregate.id, aggregate) for aggregate in (holder, quarantine,
                                                                        *withdrawn))
        return changed

    def _quarantine_account(self) -> Account:
        try:
            return self.get_account(REGISTRY_QUARANTINE)
        except UnknownAccountError:
            return self.store.remember(Account(REGISTRY_QUARANTINE, QUARANTINE, "registry"))


def overlapping(blocks, wanted: dict) -> list[SerialBlock]:
    """The parts of ``blocks`` inside any of the ``wanted`` ranges of their batch."""
    taken = []
    for block in blocks:
        for first, last in wanted.get((block.batch, block.tail), ()):
            low, high = max(first, block.first), min(last, block.last)
            if low <= high:
                taken.append(block.sub(low, high))
    return taken


def alarm_accounts(alarms: list[dict], taken: list[SerialBlock], account: str,
                   action: str) -> None:
    """Notes on each alarm which account held its serials and what became of them."""
    for alarm in alarms:
        shown = parse_verra_serial(alarm["serial"])
        tonnes = sum(min(shown.last, block.last) - max(shown.first, block.first) + 1
                     for block in taken if (block.batch, block.tail) == (shown.batch, shown.tail)
                     and block.first <= shown.last and shown.first <= block.last)
        if tonnes:
            alarm.setdefault("held_by", []).append(
                {"account": account, "tonnes": tonnes, "action": action})
