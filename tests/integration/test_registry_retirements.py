"""Retiring credits mirrored from Verra, in two phases, on SQLite and PostgreSQL: locked and
pending at once, then confirmed (by a newer export, or by an operator) or failed (the credits
go back to the buyer), through the ledger, the command line and the market."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledger.domain.errors import (InvalidCommandError, RegistryMismatchError,
                                  RegistryPhaseError, SerialsNotHeldError)
from ledger.domain.retirements import CONFIRMED, FAILED, PENDING, RetirementClaim
from ledger.domain.serials import SerialRange
from ledger.usecases.registry_imports import VERRA_HOLDING
from market.application import Marketplace
from tests.integration.command_line import in_process
from tests.integration.registry_scenario import (BATCH, BENEFICIARY, FIRST, LAST, PROJECT,
                                                 VINTAGE, block, events, rows_of, serial,
                                                 split_batch, write_export)

BUYER = "acme-carbon"
CLAIM = RetirementClaim(BENEFICIARY, "Corporate Emissions Inventory Accounting")
HELD = 2_500


@pytest.fixture
def app(database_url, tmp_path):
    """The market on the test's store, the batch imported, 2,500 t of it in the buyer's
    holding."""
    app = Marketplace(database=database_url)
    app.ledger.import_registry_export(
        rows_of(write_export(tmp_path / "batch.csv", block(FIRST, LAST))), PROJECT)
    app.ledger.open_account(BUYER)
    app.ledger.transfer(VERRA_HOLDING, BUYER, quantity=HELD)
    yield app
    app.close()


@pytest.fixture
def kapok(monkeypatch, capsys, database_url):
    return in_process(monkeypatch, capsys, database_url)


def retire(app, quantity: int = 1_000) -> str:
    return app.ledger.retire(BUYER, CLAIM, quantity=quantity)["retirement_id"]


def phase(app, retirement_id: str) -> str:
    return app.ledger.get_retirement(retirement_id).registry_phase


def test_a_retirement_of_mirrored_serials_is_pending_and_locks_them_at_once(app, kapok):
    retirement_id = retire(app)

    assert phase(app, retirement_id) == PENDING
    assert app.ledger.get_account(BUYER).balance == HELD - 1_000
    code, out, _ = kapok("registry", "pending", "--json")
    assert code == 0 and [row["retirement_id"] for row in json.loads(out)] == [retirement_id]
    locked = SerialRange(FIRST, FIRST + 999)
    with pytest.raises(SerialsNotHeldError):
        app.ledger.retire(BUYER, CLAIM, serials=locked)
    with pytest.raises(SerialsNotHeldError):
        app.ledger.transfer(BUYER, VERRA_HOLDING, serials=locked)


def test_a_newer_export_showing_the_serials_retired_for_the_beneficiary_confirms_it(
        app, tmp_path):
    retirement_id = retire(app)
    later = split_batch(tmp_path / "later.csv", {(FIRST, FIRST + 999): BENEFICIARY.upper()})

    report = app.ledger.import_registry_export(rows_of(later), PROJECT)

    assert report["refused"] == [] and report["confirmed"] == [retirement_id]
    retirement = app.ledger.get_retirement(retirement_id)
    assert retirement.registry_phase == CONFIRMED
    assert retirement.registry_serials == (serial(FIRST, FIRST + 999),)
    # Imported again, the export changes nothing.
    before = events(app)
    again = app.ledger.import_registry_export(rows_of(later), PROJECT)
    assert (again["confirmed"], again["blocks_known"], events(app)) == ([], 2, before)


def test_an_export_showing_them_retired_for_someone_else_confirms_nothing(app, tmp_path):
    retirement_id = retire(app)
    later = split_batch(tmp_path / "later.csv", {(FIRST, FIRST + 999): "Someone Else"})
    before = events(app)

    report = app.ledger.import_registry_export(rows_of(later), PROJECT)

    assert [refusal["line"] for refusal in report["refused"]] == [2]
    assert phase(app, retirement_id) == PENDING and events(app) == before


def test_an_operator_confirms_with_verras_serial_on_the_command_line(app, kapok):
    retirement_id = retire(app)
    wrong = serial(FIRST, FIRST + 998)

    code, _, err = kapok("registry", "confirm", retirement_id, "--verra-serial", wrong)
    assert code != 0 and "not the same" in err and wrong in err
    code, _, err = kapok("registry", "confirm", retirement_id, "--verra-serial", "12-34")
    assert code != 0 and "Verra serial" in err
    assert phase(app, retirement_id) == PENDING

    code, out, err = kapok("registry", "confirm", retirement_id, "--verra-serial",
                           serial(FIRST, FIRST + 999), "--date", "2026-01-15", "--json")
    assert code == 0, err
    assert json.loads(out) | {"failure": None} == {
        "retirement_id": retirement_id, "phase": CONFIRMED, "failure": None,
        "registry_serials": [serial(FIRST, FIRST + 999)], "registry_date": "2026-01-15"}
    code, _, err = kapok("registry", "confirm", retirement_id, "--verra-serial",
                         serial(FIRST, FIRST + 999))
    assert code != 0 and "already confirmed" in err
    code, _, err = kapok("registry", "fail", retirement_id, "--reason", "late")
    assert code != 0 and "already confirmed" in err
    assert app.ledger.get_account(BUYER).balance == HELD - 1_000


def test_a_confirmation_dated_in_the_future_is_refused(app):
    retirement_id = retire(app)

    with pytest.raises(InvalidCommandError, match="later than today"):
        app.ledger.confirm_registry_retirement(retirement_id, [serial(FIRST, FIRST + 999)],
                                               date.today() + timedelta(days=1))


def test_a_failed_retirement_gives_the_credits_back_once(app, kapok):
    retirement_id = retire(app)

    code, out, err = kapok("registry", "fail", retirement_id, "--reason",
                           "beneficiary name rejected", "--json")

    assert code == 0, err
    assert json.loads(out)["returned_to"] == BUYER
    assert phase(app, retirement_id) == FAILED
    assert app.ledger.get_account(BUYER).balance == HELD
    assert [b.serial for b in app.ledger.get_account(BUYER).blocks] == [
        serial(FIRST, FIRST + HELD - 1)]
    with pytest.raises(RegistryPhaseError, match="already failed"):
        app.ledger.fail_registry_retirement(retirement_id, "again")
    with pytest.raises(RegistryPhaseError, match="already failed"):
        app.ledger.confirm_registry_retirement(retirement_id, [serial(FIRST, FIRST + 999)],
                                               date.today())
    assert app.ledger.get_account(BUYER).balance == HELD


def test_a_retirement_pending_cannot_be_confirmed_with_another_retirements_serials(app,
                                                                                  kapok):
    first, second = retire(app, 100), retire(app, 100)
    code, out, _ = kapok("registry", "pending", "--json")
    assert [row["retirement_id"] for row in json.loads(out)] == [first, second]  # oldest first

    with pytest.raises(RegistryMismatchError):
        app.ledger.confirm_registry_retirement(first, [serial(FIRST + 100, FIRST + 199)],
                                               date.today())
    assert (phase(app, first), phase(app, second)) == (PENDING, PENDING)


# --- through the market: reserve, pay, deliver -----------------------------------------


@pytest.fixture
def listing(app) -> str:
    app.set_benefit_rule(PROJECT, {"ecosphere-fee": Decimal(100)},
                         effective_from=datetime.now(timezone.utc) - timedelta(hours=1))
    return app.create_listing(PROJECT, VINTAGE, VERRA_HOLDING, Decimal("12.50"), "USD",
                              5_000)["listing_id"]


def delivered(app, listing: str, tonnes: int, retirement: RetirementClaim | None) -> str:
    order_id = app.place_order(listing, tonnes, "Globex", "globex-carbon",
                               retirement=retirement)["order_id"]
    escrow = app.get_order(order_id).escrow_name
    assert [b.serial for b in app.ledger.get_account(escrow).blocks] == [
        serial(FIRST + HELD, FIRST + HELD + tonnes - 1)]
    assert app.pay_offline(order_id) == "fulfilled"
    return order_id


def test_an_order_delivers_verras_serials_to_the_buyer(app, listing):
    delivered(app, listing, 300, None)

    assert [b.serial for b in app.ledger.get_account("globex-carbon").blocks] == [
        serial(FIRST + HELD, FIRST + HELD + 299)]


def test_a_retirement_on_delivery_is_pending_then_confirmed_by_a_newer_export(app, listing,
                                                                              tmp_path):
    order_id = delivered(app, listing, 300, CLAIM)
    retirement_id = app.get_order(order_id).delivery_reference
    retired = (FIRST + HELD, FIRST + HELD + 299)
    assert phase(app, retirement_id) == PENDING
    assert [b.serial for b in app.ledger.get_retirement(retirement_id).blocks] == [
        serial(*retired)]

    report = app.ledger.import_registry_export(
        rows_of(split_batch(tmp_path / "later.csv", {retired: BENEFICIARY})), PROJECT)

    assert report["confirmed"] == [retirement_id]
    assert phase(app, retirement_id) == CONFIRMED


def test_a_failed_retirement_on_delivery_goes_back_to_the_buyer_not_the_escrow(
        database_url, app, listing):
    order_id = delivered(app, listing, 300, CLAIM)
    order = app.get_order(order_id)
    # A fresh process, as `kapok registry fail` is: its read model not caught up yet.
    operator = Marketplace(database=database_url)
    try:
        result = operator.ledger.fail_registry_retirement(order.delivery_reference,
                                                          "refused at Verra")
    finally:
        operator.close()

    assert result["returned_to"] == "globex-carbon"
    assert [b.serial for b in app.ledger.get_account("globex-carbon").blocks] == [
        serial(FIRST + HELD, FIRST + HELD + 299)]
    assert app.ledger.get_account(order.escrow_name).balance == 0


@pytest.fixture
def two_batches(app, tmp_path):
    """A second batch of 1,000 t imported, 500 t of it in the buyer's holding too; the
    buyer's retirement of 800 t of the first batch and 500 t of the second, pending."""
    second = (LAST + 1, LAST + 1_000)
    app.ledger.import_registry_export(rows_of(write_export(
        tmp_path / "second.csv", block(*second, batch=BATCH + 1))), PROJECT)
    app.ledger.transfer(VERRA_HOLDING, BUYER, serials=SerialRange(LAST + 1, LAST + 500))
    retirement = app.ledger.retire(BUYER, CLAIM, quantity=HELD + 500)
    return retirement["retirement_id"]


def rows_shown(first_batch: bool, second_batch: bool) -> list[list[str]]:
    """The two batches as Verra shows them once it retired either part, or both."""
    first = [block(FIRST, FIRST + HELD - 1, BENEFICIARY), block(FIRST + HELD, LAST)] \
        if first_batch else [block(FIRST, LAST)]
    second = [block(LAST + 1, LAST + 500, BENEFICIARY, batch=BATCH + 1),
              block(LAST + 501, LAST + 1_000, batch=BATCH + 1)] if second_batch \
        else [block(LAST + 1, LAST + 1_000, batch=BATCH + 1)]
    return first + second


def test_a_retirement_of_two_blocks_is_confirmed_once_when_an_export_shows_both(
        app, two_batches, tmp_path, monkeypatch):
    # Each row in a save of its own: the blocks are shown retired in different saves.
    monkeypatch.setattr("ledger.usecases.registry_imports.CHUNK_ROWS", 1)

    report = app.ledger.import_registry_export(
        rows_of(write_export(tmp_path / "later.csv", *rows_shown(True, True))), PROJECT)

    assert report["confirmed"] == [two_batches]
    assert phase(app, two_batches) == CONFIRMED


def test_a_retirement_shown_retired_over_two_exports_is_confirmed_by_the_second(
        app, two_batches, tmp_path):
    first = app.ledger.import_registry_export(
        rows_of(write_export(tmp_path / "one.csv", *rows_shown(True, False))), PROJECT)
    assert (first["confirmed"], first["refused"]) == ([], [])
    assert phase(app, two_batches) == PENDING

    result = app.ledger.reconcile_registry(
        rows_of(write_export(tmp_path / "both.csv", *rows_shown(True, True))), PROJECT)

    assert (result["in_step"], result["confirmed"]) == (True, 1)
    retirement = app.ledger.get_retirement(two_batches)
    assert retirement.registry_phase == CONFIRMED
    assert retirement.registry_serials == (serial(FIRST, FIRST + HELD - 1),
                                           serial(LAST + 1, LAST + 500, BATCH + 1))
