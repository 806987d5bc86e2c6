"""Hostile values on the ``kapok`` command line: each is refused with a non-zero exit and one
line ``kapok: error: ...`` (no traceback), and nothing is written to the store. The valid
baseline of each command runs last, to show the refusals were the bad value's doing."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ledger.application import Ledger
from cli import main

HUGE = "1" + "0" * 30
OVERLONG = "x" * 10_000
NOT_WHOLE = ["-5", "0", HUGE, "ten", "NaN", "Infinity", "1e3", "1.5", "0x10", "", " ",
             "9" * 10_000, "5\x00"]
NOT_MONEY = ["-1", "0", HUGE, "abc", "NaN", "Infinity", "-Infinity", "1e3", "12.345", "",
             "9" * 10_000]
BAD_SERIALS = ["12-3", "one-two", "1-", "-5", "1--2", "9" * 10_000, "1-" + HUGE, "KAP-1-x",
               "1-1", "\x00", OVERLONG]
NOT_PRINTABLE = ["Acme\x00", "Acme\x07", "\u202eemaN", OVERLONG, ""]
BAD_DATES = ["2026-02-30", "yesterday", "20260101", HUGE]
UNKNOWN = ["nobody", OVERLONG, "\x00", "' OR 1=1 --"]


def position(url: str) -> int:
    app = Ledger(database=url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.fixture
def kapok(sqlite_url, monkeypatch, capsys):
    """``kapok ARGS...`` in-process on a seeded demo store; returns (code, out, err)."""
    monkeypatch.setenv("KAPOK_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(sqlite_url.split("///")[1] + ".key"))

    def run(*args: str):
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, err = run("demo")
    assert code == 0, err
    return run


def listing(kapok, project: str = "VCS-1067") -> str:
    _, out, _ = kapok("market", "list", "--json")
    return next(row["listing_id"] for row in json.loads(out)
                if row["project_registry_id"] == project and row["available"] > 100)


def held_serials(kapok, account: str = "org-andes-coffee-roasters") -> str:
    """Two tonnes moved to the account now: a serial range it holds."""
    _, out, _ = kapok("ledger", "transfer", "--from", "ecosphere-inventory", "--to", account,
                         "--quantity", "2", "--json")
    first, last = json.loads(out)["serials"][0].split("-")[2:4]
    return f"{first}-{last}"


def assert_refused(kapok, url: str, args: list[str]):
    before = position(url)
    code, out, err = kapok(*args)
    shown = f"{args[:2]} {[a[:40] for a in args[2:]]}"
    assert code in (1, 2), (shown, code, out[:300], err[:300])
    assert err.startswith("kapok: error: ") and err.count("\n") == 1, (shown, err[:300])
    assert "Traceback" not in out + err, shown
    assert position(url) == before, shown


def refuse_each(kapok, url: str, baseline: dict[str, str], bad: dict[str, list[str]],
                command: list[str]):
    for option, values in bad.items():
        for value in values:
            options = {**baseline, option: value}
            args = command + [part for name, given in options.items() for part in (name, given)]
            assert_refused(kapok, url, args)
    args = command + [part for name, given in baseline.items() for part in (name, given)]
    code, _, err = kapok(*args)
    assert code == 0, err


def test_ledger_transfer_refuses_hostile_values(kapok, sqlite_url):
    refuse_each(kapok, sqlite_url, {
        "--from": "ecosphere-inventory", "--to": "org-lima-logistics", "--quantity": "5"}, {
        "--quantity": NOT_WHOLE + ["999999999"], "--from": UNKNOWN, "--to": UNKNOWN,
        "--serials": BAD_SERIALS}, ["ledger", "transfer"])


def test_ledger_retire_refuses_hostile_values(kapok, sqlite_url):
    serials = held_serials(kapok)
    refuse_each(kapok, sqlite_url, {
        "--account": "org-andes-coffee-roasters", "--quantity": "1",
        "--beneficiary": "Andes Coffee Roasters", "--reason": "Other"}, {
        "--quantity": NOT_WHOLE + ["100000"], "--account": UNKNOWN,
        "--beneficiary": NOT_PRINTABLE, "--reason": ["\x00", OVERLONG, ""],
        "--details": ["\x00", OVERLONG], "--period-start": BAD_DATES,
        "--claim-type": ["bragging"], "--use": ["sometimes"]}, ["ledger", "retire"])
    assert_refused(kapok, sqlite_url, [
        "ledger", "retire", "--account", "org-andes-coffee-roasters", "--serials", serials,
        "--quantity", "1", "--beneficiary", "Andes", "--reason", "Other"])


def test_ledger_issue_refuses_hostile_values(kapok, sqlite_url):
    refuse_each(kapok, sqlite_url, {
        "--project": "KAP-AF-01", "--vintage": "2021", "--quantity": "100"}, {
        "--quantity": NOT_WHOLE, "--vintage": ["1800", HUGE, "ten", "-2021"],
        "--project": UNKNOWN, "--buffer-percent": ["NaN", "-1", "100", HUGE, "abc", "Infinity"],
        "--to": UNKNOWN}, ["ledger", "issue"])


def test_market_quote_refuses_hostile_values(kapok, sqlite_url):
    listing_id = listing(kapok)
    refuse_each(kapok, sqlite_url, {"--listing": listing_id, "--tonnes": "10"}, {
        "--tonnes": NOT_WHOLE, "--listing": UNKNOWN + [""]}, ["market", "quote"])
    for amount in NOT_MONEY:
        assert_refused(kapok, sqlite_url, ["market", "quote", "--listing", listing_id,
                                           "--amount", amount, "USD"])
    assert_refused(kapok, sqlite_url, ["market", "quote", "--listing", listing_id,
                                       "--amount", "100", "XXX"])


def test_market_order_refuses_hostile_values(kapok, sqlite_url):
    refuse_each(kapok, sqlite_url, {
        "--listing": listing(kapok), "--tonnes": "5", "--buyer-org": "lima-logistics",
        "--account": "org-lima-logistics"}, {
        "--tonnes": NOT_WHOLE + ["99999999"], "--listing": UNKNOWN + [""],
        "--buyer-org": ["lima\x00", "\u202elima"], "--account": ["bad name!", OVERLONG, ""],
        "--claim-type": ["bragging"]}, ["market", "order"])


def test_market_payout_refuses_hostile_values(kapok, sqlite_url):
    refuse_each(kapok, sqlite_url, {
        "--recipient": "farmers", "--farm": "COOP-001", "--amount": "1.00",
        "--date": "2026-01-15", "--reference": "BCP-FUZZ"}, {
        "--amount": NOT_MONEY + ["100000000"], "--date": BAD_DATES,
        "--currency": ["XXX", OVERLONG], "--recipient": ["nobody", OVERLONG],
        "--farm": ["NOPE-1", OVERLONG]}, ["market", "payout"])


def test_the_payouts_csv_neutralises_a_reference_that_would_run_as_a_formula(kapok):
    code, _, err = kapok("market", "payout", "--recipient", "farmers", "--farm", "COOP-001",
                         "--amount", "1.00", "--date", "2026-01-15",
                         "--reference", '=HYPERLINK("http://evil")')
    assert code == 0, err
    code, out, _ = kapok("market", "payouts", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0][2] == "reference"
    references = [row[2] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://evil\")" in references
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
