"""Reconciling a mirrored project with a newer Verra export (`kapok registry reconcile`, and
the worker's inbox), on SQLite and PostgreSQL: every kind of difference, the double-counting
alarm taking serials off sale in the same save, and pending retirements confirmed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledger.domain.accounts import REGISTRY_QUARANTINE
from ledger.domain.retirements import CONFIRMED, PENDING, RetirementClaim
from ledger.usecases.registry_imports import VERRA_HOLDING
from market.application import Marketplace
from market.domain.orders import CANCELLED
from market.read.listing_audit import listing_violations
from tests.integration.registry_scenario import (BATCH, BENEFICIARY, FIRST, LAST, PROJECT,
                                                 VINTAGE, block, rows_of, serial, split_batch,
                                                 signing_kapok, write_export)

OTHER_BATCH, OTHER_FIRST = BATCH + 1, LAST + 1


@pytest.fixture
def app(database_url, tmp_path):
    """The market on the test's store with the batch imported into Ecosphere+'s holding."""
    app = Marketplace(database=database_url)
    app.ledger.import_registry_export(
        rows_of(write_export(tmp_path / "batch.csv", block(FIRST, LAST))), PROJECT)
    yield app
    app.close()


@pytest.fixture
def kapok(monkeypatch, capsys, database_url, tmp_path):
    return signing_kapok(monkeypatch, capsys, database_url, tmp_path)


def reconcile(kapok, path: str, *options: str) -> tuple[int, dict]:
    code, out, err = kapok("registry", "reconcile", path, "--project", PROJECT, "--json",
                           *options)
    assert out, err
    return code, json.loads(out)


def kinds(result: dict) -> list[tuple[str, str, int]]:
    return sorted((d["kind"], d["serial"], d["tonnes"]) for d in result["differences"])


def test_an_export_as_kapok_knows_it_is_in_step(app, kapok, tmp_path):
    code, result = reconcile(kapok, write_export(tmp_path / "same.csv", block(FIRST, LAST)))

    assert code == 0
    assert {key: result[key] for key in ("in_step", "differences", "confirmed")} == {
        "in_step": True, "differences": [], "confirmed": 0}
    code, out, _ = kapok("registry", "checks", "--json")
    assert code == 0 and [run["in_step"] for run in json.loads(out)] == [True]


def test_serials_verra_shows_retired_leave_the_holding_and_the_offer_in_one_save(
        app, kapok, tmp_path):
    app.set_benefit_rule(PROJECT, {"ecosphere-fee": Decimal(100)},
                         effective_from=datetime.now(timezone.utc) - timedelta(hours=1))
    listing_id = app.create_listing(PROJECT, VINTAGE, VERRA_HOLDING, Decimal("12.50"), "USD",
                                    9_500)["listing_id"]
    retired = (FIRST + 1_000, FIRST + 2_999)
    later = split_batch(tmp_path / "later.csv", {retired: "Unrelated Buyer Ltd."})
    before = app.recorder.max_notification_id()

    code, result = reconcile(kapok, later)

    assert code == 1 and result["in_step"] is False
    assert kinds(result) == [("retired_at_registry", serial(*retired), 2_000)]
    assert result["differences"][0]["held_by"] == [
        {"account": VERRA_HOLDING, "tonnes": 2_000, "action": "quarantined"}]
    assert [b.serial for b in app.ledger.get_account(REGISTRY_QUARANTINE).blocks] == [
        serial(*retired)]
    assert app.ledger.get_account(VERRA_HOLDING).balance == 8_000
    listing = app.get_listing(listing_id)
    assert (listing.on_offer, listing.available) == (8_000, 8_000)
    # The run's one save wrote only these: the ranges, the quarantine (opened) and the
    # move into it, the listing's offer, the run.
    saved = app.recorder.select_notifications(start=before + 1, limit=100)
    assert sorted(n.topic.split(":")[-1] for n in saved) == [
        "Account.Opened", "Account.Received", "Account.Sent", "Listing.OfferChanged",
        "MirroredVintage.RangesRecorded", "RegistryCheck.Recorded"]
    assert listing_violations(app) == []
    code, out, err = kapok("audit", "verify", "--follow")
    assert code == 0, out + err


def test_a_listing_offering_less_than_what_stays_held_keeps_its_offer(app, kapok, tmp_path):
    app.set_benefit_rule(PROJECT, {"ecosphere-fee": Decimal(100)},
                         effective_from=datetime.now(timezone.utc) - timedelta(hours=1))
    listing_id = app.create_listing(PROJECT, VINTAGE, VERRA_HOLDING, Decimal("12.50"), "USD",
                                    5_000)["listing_id"]

    code, _ = reconcile(kapok, split_batch(tmp_path / "later.csv",
                                           {(FIRST, FIRST + 999): "Unrelated Buyer Ltd."}))

    assert code == 1
    assert app.get_listing(listing_id).available == 5_000
    assert listing_violations(app) == []


def test_serials_reserved_for_an_order_cancel_it_and_are_quarantined(app, kapok, tmp_path):
    app.set_benefit_rule(PROJECT, {"ecosphere-fee": Decimal(100)},
                         effective_from=datetime.now(timezone.utc) - timedelta(hours=1))
    listing_id = app.create_listing(PROJECT, VINTAGE, VERRA_HOLDING, Decimal("12.50"), "USD",
                                    10_000)["listing_id"]
    order = app.get_order(app.place_order(listing_id, 500, "Globex", "globex-carbon")["order_id"])

    code, result = reconcile(kapok, split_batch(tmp_path / "later.csv",
                                                {(FIRST, FIRST + 999): "Unrelated Buyer"}))

    assert code == 1
    assert sorted(map(tuple, (h.values() for h in result["differences"][0]["held_by"]))) == [
        (VERRA_HOLDING, 500, "quarantined"),
        (order.escrow_name, 500, "quarantined; order cancelled")]
    assert app.get_order(order.order_id).state == CANCELLED
    assert app.ledger.get_account(order.escrow_name).balance == 0
    assert app.ledger.get_account(REGISTRY_QUARANTINE).balance == 1_000
    assert listing_violations(app) == []


def test_a_pending_retirement_verra_shows_retired_is_confirmed_by_the_run(app, kapok,
                                                                          tmp_path):
    app.ledger.open_account("acme")
    app.ledger.transfer(VERRA_HOLDING, "acme", quantity=1_000)
    retirement_id = app.ledger.retire("acme", RetirementClaim(BENEFICIARY, "Other"),
                                      quantity=400)["retirement_id"]

    code, result = reconcile(kapok, split_batch(tmp_path / "later.csv",
                                                {(FIRST, FIRST + 399): BENEFICIARY}))

    assert (code, result["in_step"], result["confirmed"]) == (0, True, 1)
    assert app.ledger.get_retirement(retirement_id).registry_phase == CONFIRMED


def test_a_retirement_still_pending_after_the_set_days_is_reported(app, kapok, tmp_path):
    app.ledger.open_account("acme")
    app.ledger.transfer(VERRA_HOLDING, "acme", quantity=1_000)
    retirement_id = app.ledger.retire("acme", RetirementClaim(BENEFICIARY, "Other"),
                                      quantity=400)["retirement_id"]
    same = write_export(tmp_path / "same.csv", block(FIRST, LAST))

    assert reconcile(kapok, same)[0] == 0  # within the default 14 days
    code, result = reconcile(kapok, same, "--pending-days", "0")

    assert code == 1
    assert kinds(result) == [("pending_still_active", serial(FIRST, FIRST + 399), 400)]
    assert result["differences"][0]["retirement_id"] == retirement_id
    assert app.ledger.get_retirement(retirement_id).registry_phase == PENDING


def test_serials_at_verra_unknown_to_kapok_are_reported(app, kapok, tmp_path):
    extra = block(OTHER_FIRST, OTHER_FIRST + 499, batch=OTHER_BATCH)

    code, result = reconcile(kapok, write_export(tmp_path / "later.csv", block(FIRST, LAST),
                                                 extra))

    assert code == 1
    assert kinds(result) == [("unknown_at_kapok", serial(OTHER_FIRST, OTHER_FIRST + 499,
                                                         OTHER_BATCH), 500)]
    assert app.ledger.get_account(VERRA_HOLDING).balance == 10_000


def test_a_batch_whose_quantities_differ_is_reported(app, kapok, tmp_path):
    code, result = reconcile(kapok, write_export(tmp_path / "less.csv", block(FIRST, LAST - 300)))

    assert code == 1
    assert kinds(result) == [("quantity_differs", f"batch {BATCH}", -300)]


def test_a_range_crossing_a_known_one_is_reported_with_what_kapok_knows(app, kapok, tmp_path):
    code, result = reconcile(kapok, write_export(tmp_path / "shifted.csv",
                                                 block(FIRST + 100, LAST + 100)))

    assert code == 1
    crossing = [d for d in result["differences"] if d["serial"].startswith(f"{BATCH}-")]
    assert [(d["kind"], d["known"]) for d in crossing] == [
        ("quantity_differs", [f"{FIRST}-{LAST} active"])]


def test_a_batch_kapok_knows_that_the_export_lacks_is_reported(app, kapok, tmp_path):
    other = block(OTHER_FIRST, OTHER_FIRST + 499, batch=OTHER_BATCH)

    code, result = reconcile(kapok, write_export(tmp_path / "other.csv", other))

    assert code == 1
    assert ("missing_at_registry", f"batch {BATCH}", 10_000) in kinds(result)


def test_every_difference_names_its_kind_serial_and_tonnes(app, kapok, tmp_path):
    code, result = reconcile(kapok, write_export(
        tmp_path / "later.csv", block(FIRST, FIRST + 99, "Someone"), block(FIRST + 100, LAST),
        block(OTHER_FIRST, OTHER_FIRST + 9, batch=OTHER_BATCH)))

    assert code == 1
    assert {"in_step", "differences", "confirmed"} <= set(result)
    assert all({"kind", "serial", "tonnes"} <= set(d) for d in result["differences"])
    assert {d["kind"] for d in result["differences"]} == {"retired_at_registry",
                                                          "unknown_at_kapok"}


def test_reconciling_a_project_kapok_does_not_mirror_is_refused(app, kapok, tmp_path):
    code, _, err = kapok("registry", "reconcile", write_export(tmp_path / "a.csv",
                                                               block(FIRST, LAST)),
                         "--project", "VCS-999")
    assert code != 0 and "VCS-999" in err


def test_the_worker_reconciles_each_dropped_export_once(app, kapok, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("KAPOK_REGISTRY_INBOX", str(inbox))
    split_batch(inbox / "VCS-1067-2026-12.csv", {(FIRST, FIRST + 99): "Unrelated Buyer"})
    (inbox / "VCS-1067-broken.csv").write_text("not,an,export\n")

    code, out, err = kapok("worker", "--once")

    assert code == 0, err
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["VCS-1067-2026-12.csv"]
    assert sorted(p.name for p in (inbox / "refused").iterdir()) == ["VCS-1067-broken.csv"]
    assert not list(inbox.glob("*.csv"))
    code, out, _ = kapok("worker", "--once")
    code, out, _ = kapok("registry", "checks", "--json")
    runs = json.loads(out)
    assert [(run["source"], run["in_step"]) for run in runs] == [("VCS-1067-2026-12.csv", False)]
    assert app.ledger.get_account(REGISTRY_QUARANTINE).balance == 100


def test_a_retirement_verra_shows_retired_is_never_reported_as_still_active(app, kapok,
                                                                            tmp_path):
    app.ledger.open_account("acme")
    app.ledger.transfer(VERRA_HOLDING, "acme", quantity=1_000)
    mine = app.ledger.retire("acme", RetirementClaim(BENEFICIARY, "Other"), quantity=400)
    taken = app.ledger.retire("acme", RetirementClaim(BENEFICIARY, "Other"), quantity=100)
    later = split_batch(tmp_path / "later.csv", {(FIRST, FIRST + 399): BENEFICIARY,
                                                 (FIRST + 400, FIRST + 499): "Someone Else"})

    code, result = reconcile(kapok, later, "--pending-days", "0")

    assert (code, result["confirmed"]) == (1, 1)
    assert kinds(result) == [("retired_at_registry", serial(FIRST + 400, FIRST + 499), 100)]
    assert app.ledger.get_retirement(mine["retirement_id"]).registry_phase == CONFIRMED
    assert app.ledger.get_retirement(taken["retirement_id"]).registry_phase == PENDING
    # Retired at Verra for someone else: failing it would hand back credits Verra retired.
    code, _, err = kapok("registry", "fail", taken["retirement_id"], "--reason", "taken")
    assert code != 0 and "shows" in err and "retired" in err
    assert app.ledger.get_account("acme").balance == 500


def test_a_buyers_serials_verra_shows_retired_are_quarantined_too(app, kapok, tmp_path):
    app.ledger.open_account("acme")
    app.ledger.transfer(VERRA_HOLDING, "acme", quantity=1_000)

    code, result = reconcile(kapok, split_batch(tmp_path / "later.csv",
                                                {(FIRST + 900, FIRST + 1_099): "Someone"}))

    assert code == 1
    assert sorted((h["account"], h["tonnes"]) for h in result["differences"][0]["held_by"]) == [
        ("acme", 100), (VERRA_HOLDING, 100)]
    assert app.ledger.get_account("acme").balance == 900
    assert app.ledger.get_account(REGISTRY_QUARANTINE).balance == 200
    code, out, _ = kapok("registry", "checks", "--project", PROJECT, "--json")
    assert code == 0 and [run["in_step"] for run in json.loads(out)] == [False]
