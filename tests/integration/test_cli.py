"""The ``kapok`` command line: demo seeding, ledger commands, and refusals of bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from decimal import Decimal

import pytest

from ledger.application import Ledger
from market.application import Marketplace
from market.demo import LISTINGS, SALES
from cli import main
from tests.integration.command_line import in_process


@pytest.fixture
def kapok(sqlite_url, monkeypatch, capsys):
    """Runs ``kapok ARGS...`` in-process on a fresh SQLite store; returns (code, out, err)."""
    return in_process(monkeypatch, capsys, sqlite_url)


@pytest.fixture
def seeded(kapok):
    code, _, err = kapok("demo")
    assert code == 0, err
    return kapok


def stored_position(url: str) -> int:
    app = Ledger(database=url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def test_demo_seeds_the_tambopata_projects_and_can_run_twice(kapok, sqlite_url):
    code, out, _ = kapok("demo")
    assert code == 0
    assert "2 projects, 4 issuances" in out
    position = stored_position(sqlite_url)
    code, _, _ = kapok("demo")
    assert code == 0
    assert stored_position(sqlite_url) == position  # the second run changed nothing

    code, out, _ = kapok("ledger", "projects", "--json")
    assert {row["registry_id"] for row in json.loads(out)} == {"VCS-1067", "KAP-AF-01"}


def test_demo_seeds_with_test_payments_on_a_site_configured_for_stripe(kapok, monkeypatch,
                                                                       sqlite_url):
    # The site takes real payments through Stripe; the demo's own sales stay test payments
    # (no call reaches Stripe: its address here answers nothing).
    monkeypatch.setenv("KAPOK_STRIPE_SECRET_KEY", "sk_test_not_used")
    monkeypatch.setenv("KAPOK_STRIPE_WEBHOOK_SECRET", "whsec_not_used")
    monkeypatch.setenv("KAPOK_STRIPE_API_BASE", "http://127.0.0.1:9")
    code, out, err = kapok("demo")
    assert code == 0, err
    assert "2 projects, 4 issuances" in out
    app = Marketplace(database=sqlite_url)
    try:
        rows, total = app.caught_up_view().orders()
        assert total == len(SALES) and {row["state"] for row in rows} == {"fulfilled"}
        assert {row["payment_id"][:11] for row in rows} == {"offline_pi_"}
    finally:
        app.close()


def test_balances_json_is_one_object_per_row_with_account_and_quantity(seeded):
    code, out, _ = seeded("ledger", "balances", "--json", "--account", "org-andes-coffee-roasters")
    rows = json.loads(out)
    assert code == 0
    assert {(row["account"], row["status"], row["quantity"]) for row in rows} == {
        ("org-andes-coffee-roasters", "held", 380),
        ("org-andes-coffee-roasters", "retired", 120),
    }


def test_issue_transfer_retire_and_look_up_a_serial(seeded):
    code, out, err = seeded("ledger", "issue", "--project", "KAP-AF-01", "--vintage", "2023",
                            "--quantity", "1000", "--json")
    assert code == 0, err
    issued = json.loads(out)
    assert issued["quantity"] == 1000 and issued["buffer_quantity"] == 150  # the project's 15%

    code, out, err = seeded("ledger", "transfer", "--from", "ecosphere-inventory",
                            "--to", "org-lima-logistics", "--quantity", "40", "--json")
    assert code == 0, err
    moved = json.loads(out)
    assert moved["quantity"] == 40

    code, out, err = seeded("ledger", "retire", "--account", "org-lima-logistics", "--quantity", "15",
                            "--beneficiary", "Lima Logistics Corp.", "--reason", "Other",
                            "--period-start", "2025-01-01", "--period-end", "2025-12-31", "--json")
    assert code == 0, err
    retired = json.loads(out)
    assert retired["retirement_id"].startswith("KAP-RET-") and retired["quantity"] == 15

    first_retired = int(retired["serials"][0].split("-")[2])
    code, out, _ = seeded("ledger", "serial", str(first_retired), "--json")
    found = json.loads(out)
    assert found["status"] == "retired"
    assert [step["event"] for step in found["history"]] == ["issued", "transferred", "retired"]

    code, out, _ = seeded("ledger", "retirement", retired["retirement_id"], "--json")
    assert json.loads(out)["beneficiary"] == "Lima Logistics Corp."


BAD_COMMANDS = [
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "abc"], 2, "not a valid integer"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "0"], 1, "invalid quantity 0"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "-5"], 1, "invalid quantity -5"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "9" * 30], 1, "invalid quantity"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "1.5"], 2, "not a valid integer"),
    (["ledger", "transfer", "--from", "nobody", "--to", "org-lima-logistics", "--quantity", "5"],
     1, "unknown account nobody"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "nobody", "--quantity", "5"],
     1, "unknown account nobody"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--quantity", "999999999"], 1, "insufficient credits"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics"],
     1, "either a quantity or a serial range"),
    (["ledger", "transfer", "--from", "ecosphere-inventory", "--to", "org-lima-logistics",
      "--serials", "9-3"], 2, "invalid serial"),
    (["ledger", "transfer", "--from", "buffer-pool", "--to", "org-lima-logistics", "--quantity", "5"],
     1, "buffer pool"),
    # The demo retired the first serials Andes received: Verra's, of VCS-1067's batch 14211.
    (["ledger", "retire", "--account", "org-andes-coffee-roasters", "--serials", "612001501",
      "--beneficiary", "X", "--reason", "Y"], 1, "already retired"),
    (["ledger", "retire", "--account", "org-andes-coffee-roasters", "--quantity", "5",
      "--beneficiary", " ", "--reason", "Y"], 1, "needs a beneficiary"),
    (["ledger", "retire", "--account", "org-andes-coffee-roasters", "--quantity", "5",
      "--beneficiary", "X", "--reason", "Y", "--period-start", "2025-02-01",
      "--period-end", "2025-01-01"], 1, "ends before it starts"),
    (["ledger", "issue", "--project", "NOPE", "--vintage", "2020", "--quantity", "5"],
     1, "unknown project NOPE"),
    (["ledger", "issue", "--project", "KAP-AF-01", "--vintage", "2031", "--quantity", "5"],
     1, "no vintage 2031"),
    (["ledger", "issue", "--project", "KAP-AF-01", "--vintage", "2022", "--quantity", "5",
      "--buffer-percent", "100"], 1, "buffer percent"),
    (["ledger", "issue", "--project", "VCS-1067", "--vintage", "2020", "--quantity", "5"],
     1, "Kapok never issues its serials"),
    (["ledger", "serial", "1"], 1, "never issued"),
    (["ledger", "serial", "abc"], 2, "invalid serial"),
    (["ledger", "retirement", "KAP-RET-NOPE"], 1, "unknown retirement"),
    (["ledger", "open-account", "bad name!"], 1, "invalid account name"),
    (["ledger", "open-account", "org-lima-logistics"], 1, "already exists"),
    (["ledger", "no-such-command"], 2, "No such command"),
]


@pytest.mark.parametrize("args, exit_code, message", BAD_COMMANDS,
                         ids=[" ".join(args)[:60] for args, _, _ in BAD_COMMANDS])
def test_bad_input_gets_one_line_error_nonzero_exit_and_changes_nothing(
    seeded, sqlite_url, args, exit_code, message
):
    before = stored_position(sqlite_url)
    code, out, err = seeded(*args)
    assert code == exit_code
    assert message in err
    assert err.startswith("kapok: error: ") and err.count("\n") == 1
    assert stored_position(sqlite_url) == before


def test_unsupported_database_url_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("KAPOK_DATABASE_URL", "mysql://somewhere/db")
    assert main(["ledger", "balances"]) == 2
    assert "unsupported database URL" in capsys.readouterr().err


def test_unreachable_database_exits_3_with_a_message(monkeypatch, capsys):
    monkeypatch.setenv("KAPOK_DATABASE_URL", "postgresql://postgres@127.0.0.1:9/kapok")
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "1")
    assert main(["ledger", "balances"]) == 3
    assert "database unavailable" in capsys.readouterr().err


def test_the_installed_console_script_runs(sqlite_url, tmp_path):
    env = {"KAPOK_DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "cli", "ledger", "transfer", "--from", "a",
                           "--to", "b", "--quantity", "x"], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("kapok: error: Invalid value for '--quantity'")


# --- kapok audit ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def signing_key_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing.pem"))


def test_demo_creates_a_signing_key_outside_the_store_and_says_where(kapok, tmp_path):
    code, out, _ = kapok("demo")
    assert code == 0
    assert f"Created a DEMO signing key at {tmp_path / 'keys' / 'signing.pem'}" in out
    assert (tmp_path / "keys" / "signing.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY")


def test_audit_verify_passes_on_the_demo_and_fails_naming_the_tampered_position(seeded, sqlite_url):
    events = stored_position(sqlite_url)  # every event the demo stored
    code, out, _ = seeded("audit", "verify")
    assert code == 0 and out.strip().splitlines()[-1].startswith(f"OK: {events} events")

    app = Ledger(database=sqlite_url)
    with app.factory.datastore.transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM stored_events WHERE rowid = 30")
    app.close()

    code, out, err = seeded("audit", "verify", "--no-follow")
    assert code == 1
    assert "FAIL position 30: event_kept" in out
    assert err.startswith("kapok: error: verification failed")


def test_audit_replay_json_gives_balances_at_a_position(seeded):
    code, out, _ = seeded("audit", "replay", "--until-position", "20", "--json")
    replayed = json.loads(out)
    assert code == 0
    assert replayed["position"] == 20 and replayed["events"] == 20
    assert all({"account", "quantity"} <= set(row) for row in replayed["balances"])


@pytest.mark.parametrize("args, message", [
    (["audit", "replay", "--until", "yesterday"], "not an ISO timestamp"),
    (["audit", "replay", "--until-position", "-1"], "--until-position"),
    (["audit", "prove", "KAP-RET-NOTHING"], "unknown retirement"),
    (["audit", "consistency", "--from", "5"], "no signed tree head of size 5"),
    (["audit", "export", "--format", "xml"], "'xml' is not one of"),
])
def test_audit_commands_refuse_bad_input_in_one_line(seeded, args, message):
    code, _, err = seeded(*args)
    assert code != 0
    assert message in err and err.count("\n") == 1


def test_exported_csv_neutralises_formulas(seeded, tmp_path):
    seeded("ledger", "retire", "--account", "org-andes-coffee-roasters", "--quantity", "1",
           "--beneficiary", "=HYPERLINK(\"http://evil\")", "--reason", "+cmd")
    target = tmp_path / "events.csv"
    code, _, err = seeded("audit", "export", "--format", "csv", "--output", str(target))
    assert code == 0 and "events written" in err
    with target.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) > 108
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    assert any("HYPERLINK" in row["fields"] for row in rows)


def test_a_proof_file_verifies_with_the_standalone_script_alone(seeded, tmp_path):
    code, out, _ = seeded("ledger", "balances", "--json")
    code, out, _ = seeded("ledger", "retire", "--account", "org-andes-coffee-roasters",
                          "--quantity", "3", "--beneficiary", "Ana", "--reason", "Other", "--json")
    retirement_id = json.loads(out)["retirement_id"]
    proof = tmp_path / "proof.json"
    code, _, err = seeded("audit", "prove", retirement_id, "--output", str(proof))
    assert code == 0, err

    # A folder with nothing of Kapok but the verifier, run in isolated mode.
    alone = tmp_path / "alone"
    alone.mkdir()
    from pathlib import Path

    import ledger.audit.verifier as verifier

    (alone / "verifier.py").write_text(Path(verifier.__file__).read_text())
    public = tmp_path / "keys" / "signing.pub.pem"
    done = subprocess.run([sys.executable, "-I", "verifier.py", str(proof), "--public-key", str(public)],
                          cwd=alone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK:")

    document = json.loads(proof.read_text())
    document["event"]["decoded"]["beneficiary"] = "Someone Else"  # informational only...
    document["event"]["state"] = document["event"]["state"][:-4] + "AAAA"  # ...but state is not
    proof.write_text(json.dumps(document))
    done = subprocess.run([sys.executable, "-I", "verifier.py", str(proof), "--public-key", str(public)],
                          cwd=alone, capture_output=True, text=True)
    assert done.returncode == 1


# --- kapok market ---------------------------------------------------------------------------


def first_listing(run, project="KAP-AF-01") -> dict:
    _, out, _ = run("market", "list", "--json")
    return next(row for row in json.loads(out) if row["project_registry_id"] == project)


def test_market_list_shows_price_availability_buffer_and_labels(seeded):
    code, out, _ = seeded("market", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3
    agroforestry = first_listing(seeded)
    assert agroforestry["buffer_percent"] == "15" and "CCB" in agroforestry["labels"]
    # What the demo's listing offers, less what the demo's sales took from it.
    on_offer = next(o for p, v, _, o, _, _ in LISTINGS if (p, v) == ("KAP-AF-01", 2023))
    sold = sum(t for _, p, v, t, _, _ in SALES if (p, v) == ("KAP-AF-01", 2023))
    assert sold and agroforestry["available"] == on_offer - sold


def test_quote_by_tonnes_amount_and_estimate(seeded, tmp_path):
    listing = first_listing(seeded)["listing_id"]
    code, out, _ = seeded("market", "quote", "--listing", listing, "--tonnes", "600", "--json")
    assert code == 0 and json.loads(out)["total_minor"] == 600 * 2200  # the 500 t tier price

    code, out, _ = seeded("market", "quote", "--listing", listing[:8], "--amount", "500", "USD", "--json")
    assert code == 0 and json.loads(out)["tonnes"] == 20  # 20 x 24.00 <= 500 < 21 x 24.00

    activities = tmp_path / "activities.csv"
    activities.write_text("type,kwh,country\nelectricity,100000,PE\n")
    code, out, err = seeded("market", "quote", "--listing", listing, "--estimate", str(activities), "--json")
    assert code == 0, err
    assert json.loads(out)["tonnes"] >= 25  # 100 MWh on Peru's grid is about 25 t


def test_order_pay_and_statement_route_every_cent_to_the_farms_and_partners(seeded):
    listing = first_listing(seeded)["listing_id"]
    code, out, _ = seeded("market", "order", "--listing", listing, "--tonnes", "30",
                          "--buyer-org", "Lima Logistics", "--account", "org-lima-logistics", "--json")
    order = json.loads(out)
    assert code == 0 and order["state"] == "reserved"

    code, out, _ = seeded("market", "pay", order["order_id"])
    assert code == 0 and "TEST PAYMENT" in out and "fulfilled" in out

    code, out, _ = seeded("market", "payouts", "--json")
    statement = json.loads(out)
    rows = [row for row in statement if row["reference"] == order["order_id"]]
    assert sum(row["allocated"] for row in rows) == order["total_minor"]
    assert {row["recipient"] for row in rows} == {"farmers", "aider-field-programme", "ecosphere-fee"}

    # COOP-004 is owed its share of this sale on top of what the demo left owing to it (its
    # share of the demo's sale, less the demo's payout to it).
    farm = [r for r in statement if r["farm_code"] == "COOP-004"]
    owed_before = sum(r["allocated"] - r["paid_out"] for r in farm)
    assert any(r["paid_out"] for r in farm)  # the demo's payout
    assert next(r for r in rows if r["farm_code"] == "COOP-004")["allocated"] > 0
    code, out, _ = seeded("market", "payout", "--recipient", "farmers", "--farm", "COOP-004",
                          "--amount", "10.00", "--date", "2026-11-26", "--reference", "BCP-1", "--json")
    assert code == 0
    assert json.loads(out)["owed"] == owed_before - 1000


def test_refund_gives_the_money_back_takes_the_credits_back_and_the_statement_shows_it(seeded):
    listing = first_listing(seeded)["listing_id"]
    _, out, _ = seeded("market", "order", "--listing", listing, "--tonnes", "12",
                       "--buyer-org", "lima-logistics", "--account", "org-lima-logistics", "--json")
    order = json.loads(out)
    seeded("market", "pay", order["order_id"])

    code, out, err = seeded("market", "refund", order["order_id"], "--reason", "test", "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "refunded"

    code, out, _ = seeded("market", "payouts", "--project", "KAP-AF-01", "--json")
    rows = [row for row in json.loads(out) if row["reference"] == order["order_id"]]
    assert {row["kind"] for row in rows} == {"sale", "refund"}
    assert sum(row["allocated"] for row in rows) == 0
    code, _, err = seeded("market", "refund", order["order_id"], "--reason", "again")
    assert code == 1 and "only paid or fulfilled" in err


# Every demo sale at the listing's base price (tier prices are lower): more than any farm is owed.
DEMO_SALES_TOTAL = sum(Decimal(price) * tonnes for _, project, vintage, tonnes, _, _ in SALES
                       for p, v, price, *_ in LISTINGS if (p, v) == (project, vintage))


@pytest.mark.parametrize("args, message", [
    (["market", "quote", "--listing", "nope", "--tonnes", "5"], "unknown listing"),
    (["market", "quote", "--listing", "nope"], "exactly one of"),
    (["market", "quote", "--listing", "nope", "--amount", "ten", "USD"], "ten"),
    (["market", "order-status", "KAP-ORD-NOPE"], "unknown order"),
    # a farm never allocated anything, and a farm paid more than every demo sale brought in
    (["market", "payout", "--recipient", "farmers", "--farm", "COOP-999", "--amount", "1",
      "--date", "2026-01-01", "--reference", "R"], "COOP-999"),
    (["market", "payout", "--recipient", "farmers", "--farm", "COOP-001", "--amount",
      str(DEMO_SALES_TOTAL + Decimal("0.01")), "--date", "2026-01-01", "--reference", "R"],
     "COOP-001"),
    (["market", "payout", "--recipient", "x", "--amount", "1.234", "--date", "2026-01-01",
      "--reference", "R"], "1.234"),
])
def test_market_commands_refuse_bad_input_in_one_line(seeded, args, message):
    code, _, err = seeded(*args)
    assert code != 0
    assert message in err and err.count("\n") == 1


def test_ordering_more_than_available_is_refused_and_changes_nothing(seeded, sqlite_url):
    listing = first_listing(seeded)["listing_id"]
    before = stored_position(sqlite_url)
    code, _, err = seeded("market", "order", "--listing", listing, "--tonnes", "9000",
                          "--buyer-org", "X", "--account", "x-corp")
    assert code == 1 and "available" in err
    assert stored_position(sqlite_url) == before


def test_operators_set_reservation_caps_and_release_a_reservation_from_the_command_line(
        seeded):
    listing = first_listing(seeded)["listing_id"]
    code, out, _ = seeded("market", "caps", "--per-listing", "20", "--per-organisation", "30",
                          "--json")
    assert code == 0 and json.loads(out) == {"per_listing": 20, "per_organisation": 30}
    code, _, err = seeded("market", "order", "--listing", listing, "--tonnes", "21",
                          "--buyer-org", "X", "--account", "x-corp")
    assert code == 1 and "at most 20 t reserved on listing" in err

    available = first_listing(seeded)["available"]
    code, out, _ = seeded("market", "order", "--listing", listing, "--tonnes", "20",
                          "--buyer-org", "X", "--account", "x-corp", "--json")
    assert first_listing(seeded)["available"] == available - 20
    code, out, _ = seeded("market", "release", json.loads(out)["order_id"], "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"
    assert first_listing(seeded)["available"] == available
