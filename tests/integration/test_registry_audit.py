"""`kapok audit verify` over mirrored projects, on SQLite and PostgreSQL: clean on the demo
and after imports, reconciliations, confirmations and failures; failing, by name, when a
serial moves in Kapok after an export showed it retired at Verra."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledger.domain.accounts import REGISTRY_QUARANTINE
from ledger.domain.mirror import RegistryRange, mirrored_vintage_id
from ledger.domain.retirements import RetirementClaim
from ledger.domain.serials import SerialRange
from ledger.usecases.registry_imports import VERRA_HOLDING
from market.application import Marketplace
from market.domain.orders import CANCELLED, FULFILLED, IllegalTransitionError
from tests.integration.registry_scenario import (BATCH, FIRST, LAST, PROJECT, TAIL, VINTAGE,
                                                 block, fixture, rows_of, split_batch,
                                                 signing_kapok, write_export)


@pytest.fixture
def kapok(monkeypatch, capsys, database_url, tmp_path):
    return signing_kapok(monkeypatch, capsys, database_url, tmp_path)


@pytest.fixture
def app(database_url):
    app = Marketplace(database=database_url)
    yield app
    app.close()


def verify(kapok) -> tuple[int, str]:
    code, out, err = kapok("audit", "verify", "--follow")
    return code, out + err


def test_the_demo_and_every_registry_command_after_it_leave_the_audit_clean(kapok, app):
    assert kapok("demo")[0] == 0
    assert verify(kapok)[0] == 0
    # The demo's retirement on delivery is pending at Verra: the operator confirms it.
    code, out, _ = kapok("registry", "pending", "--json")
    (pending,) = json.loads(out)
    retirement = app.ledger.get_retirement(pending["retirement_id"])
    code, _, err = kapok("registry", "confirm", retirement.retirement_id,
                         *[f"--verra-serial={b.serial}" for b in retirement.blocks])
    assert code == 0, err
    # Verra's newer export: serials Kapok holds shown retired (quarantined), a batch unknown.
    code, _, _ = kapok("registry", "reconcile", fixture("vcs1067_export_newer.csv"),
                       "--project", PROJECT)
    assert code == 1
    # A buyer's retirement refused at Verra, and the mixed export imported.
    app.ledger.open_account("acme")
    app.ledger.transfer(VERRA_HOLDING, "acme", quantity=300)
    failed = app.ledger.retire("acme", RetirementClaim("Acme", "Other"), quantity=200)
    code, _, err = kapok("registry", "fail", failed["retirement_id"], "--reason", "refused")
    assert code == 0, err
    code, _, err = kapok("registry", "import", fixture("vcs1067_mixed.csv"), "--project",
                         PROJECT)
    assert code == 0, err

    code, out = verify(kapok)

    assert code == 0, out
    assert out.startswith("OK")


def shown_retired_by_a_later_export(app, first: int, last: int) -> None:
    """What an import of a later export records when Verra shows first..last retired, alone
    (without the quarantine a reconciliation saves with it)."""

    def command():
        known = app.store.load(mirrored_vintage_id(PROJECT, VINTAGE))
        known.record((RegistryRange(BATCH, first, last, TAIL, date(2026, 6, 30),
                                    "Unrelated Buyer"),), "export of 2026-06-30")
        return [known], None

    app.store.run("record_export", {}, None, command)


@pytest.fixture
def imported(app, tmp_path):
    app.ledger.import_registry_export(
        rows_of(write_export(tmp_path / "batch.csv", block(FIRST, LAST))), PROJECT)
    app.ledger.open_account("acme")
    return app


@pytest.mark.parametrize("move", ["transfer", "retire"])
def test_moving_a_serial_after_verra_showed_it_retired_fails_the_audit_by_name(
        kapok, imported, move):
    assert verify(kapok)[0] == 0
    shown_retired_by_a_later_export(imported, FIRST + 10, FIRST + 19)
    assert verify(kapok)[0] == 0  # shown retired, but not moved yet

    if move == "transfer":
        imported.ledger.transfer(VERRA_HOLDING, "acme", serials=SerialRange(FIRST, FIRST + 99))
    else:
        imported.ledger.retire(VERRA_HOLDING, RetirementClaim("Acme", "Other"),
                               serials=SerialRange(FIRST + 15, FIRST + 15))
    code, out = verify(kapok)

    assert code != 0
    assert "not_after_registry_retired" in out
    assert str(BATCH) in out


def test_an_order_holding_serials_verra_showed_retired_is_cancelled_and_never_delivers_them(
        kapok, imported, tmp_path):
    app = imported
    app.set_benefit_rule(PROJECT, {"ecosphere-fee": Decimal(100)},
                         effective_from=datetime.now(timezone.utc) - timedelta(hours=1))
    listing = app.create_listing(PROJECT, VINTAGE, VERRA_HOLDING, Decimal("10"), "USD",
                                 1_000)["listing_id"]
    order_id = app.place_order(listing, 100, "Acme", "acme")["order_id"]
    code, _, _ = kapok("registry", "reconcile", split_batch(
        tmp_path / "later.csv", {(FIRST, FIRST + 99): "Unrelated Buyer"}), "--project",
        PROJECT)
    assert code == 1 and app.get_order(order_id).state == CANCELLED

    with pytest.raises(IllegalTransitionError):  # nothing left to pay for, or deliver
        app.pay_offline(order_id)

    assert app.get_order(order_id).state != FULFILLED
    assert app.ledger.get_account(REGISTRY_QUARANTINE).balance == 100
    code, out = verify(kapok)
    assert code == 0, out
