"""Importing Verra's exports of a mirrored project (`kapok registry import`), on SQLite and
PostgreSQL: every block with Verra's serials, nothing written when a row is refused, and the
same file twice changes nothing."""

from __future__ import annotations

import json
import re

import pytest

from ledger.domain.errors import InvalidCommandError, MirroredProjectError
from ledger.domain.mirror import mirrored_vintage_id
from ledger.domain.projects import VERRA
from ledger.domain.retirements import RetirementClaim
from ledger.usecases.registry_imports import VERRA_HOLDING
from market.application import Marketplace
from testbed.builders import project_details
from tests.integration.command_line import in_process
from tests.integration.registry_scenario import (BATCH, FIRST, LAST, PROJECT, block, events,
                                                 fixture, rows_of, serial, write_export)

CLEAN, MIXED = fixture("vcs1067_export.csv"), fixture("vcs1067_mixed.csv")
REFUSED, OVERLAP = fixture("vcs1067_refused.csv"), fixture("vcs1067_overlap.csv")
REPORT_KEYS = {"project", "rows", "skipped", "blocks_new", "blocks_known", "tonnes_new",
               "retired_at_verra", "refused"}
# batch-first-last-tail, the tail in either of Verra's formats
VERRA_SERIAL = re.compile(r"(\d+)-(\d+)-(\d+)-((?:VCS-)?VCU-\d+-(?:VER|MER)-[A-Z]{2}-\d+-\d+-"
                          r"\d{8}-\d{8}-\d)")


@pytest.fixture
def ledger(database_url):
    """The ledger as the command line opens it: the market's (on PostgreSQL its events are
    in a table of the market's own)."""
    app = Marketplace(database=database_url)
    yield app.ledger
    app.close()


@pytest.fixture
def kapok(monkeypatch, capsys, database_url):
    return in_process(monkeypatch, capsys, database_url)


def import_json(kapok, path: str, *options: str) -> tuple[int, dict]:
    code, out, err = kapok("registry", "import", path, "--project", PROJECT, "--json",
                           *options)
    assert out, err
    return code, json.loads(out)


def active_serials(path: str) -> list[str]:
    rows = [row for row in rows_of(path)() if hasattr(row, "serial")
            and hasattr(row, "vintage") and row.project_id == 1067]
    return sorted(row.serial.text for row in rows if not row.retired)


def test_the_clean_export_records_every_active_block_with_verras_serial(ledger):
    report = ledger.import_registry_export(rows_of(CLEAN), PROJECT)

    assert {key: report[key] for key in REPORT_KEYS} == {
        "project": PROJECT, "rows": 14, "skipped": 0, "blocks_new": 11, "blocks_known": 0,
        "tonnes_new": 213_900, "retired_at_verra": 3, "refused": []}
    holder = ledger.get_account(VERRA_HOLDING)
    assert holder.balance == 213_900
    assert sorted(b.serial for b in holder.blocks) == active_serials(CLEAN)
    # The retired rows are known as retired at Verra, with their beneficiaries.
    known = ledger.store.load(mirrored_vintage_id(PROJECT, 2019))
    assert "retired" in known.batches["14211"][2]


def test_the_project_and_its_vintages_are_created_from_the_rows(ledger):
    ledger.import_registry_export(rows_of(CLEAN), PROJECT)

    project = ledger.get_project(PROJECT)
    assert project.details.mirrored and project.details.registry == VERRA
    assert project.details.country == "PE" and "Tambopata" in project.details.name
    assert sorted(project.vintages) == [2019, 2020, 2021, 2022, 2023]
    assert "CCP" in project.vintages[2023].labels


def test_both_serial_formats_quoted_fields_and_other_projects_rows(kapok, ledger):
    code, report = import_json(kapok, MIXED)

    assert code == 0, report
    assert (report["rows"], report["skipped"], report["refused"]) == (5, 2, [])
    assert report["blocks_new"] + report["retired_at_verra"] == 5
    serials = [b.serial for b in ledger.get_account(VERRA_HOLDING).blocks]
    assert sorted(serials) == active_serials(MIXED)
    assert any(s.startswith("3012-") and "-VCU-" in s and "-VCS-" not in s for s in serials)
    assert all(VERRA_SERIAL.fullmatch(s) for s in serials)
    # Other projects' rows are counted, never recorded.
    assert {b.project for b in ledger.get_account(VERRA_HOLDING).blocks} == {PROJECT}


@pytest.mark.parametrize("path, lines", [(REFUSED, [3, 4, 6, 7]), (OVERLAP, [3])])
def test_a_file_with_a_refused_row_writes_nothing_and_names_each_row(kapok, ledger, path,
                                                                      lines):
    before = events(ledger)

    code, report = import_json(kapok, path)

    assert code == 1
    assert [refusal["line"] for refusal in report["refused"]] == lines
    assert all(refusal["why"] and refusal["serial"] for refusal in report["refused"])
    assert events(ledger) == before


def test_a_refused_row_is_printed_with_its_line_and_why(kapok):
    code, out, err = kapok("registry", "import", REFUSED, "--project", PROJECT)

    assert code == 1
    assert "line 4:" in err and "Quantity Issued is 5,100" in err
    assert "line 6:" in err and "slash dates" in err
    assert "nothing was imported" in err


def test_importing_the_same_file_twice_changes_nothing(kapok, ledger):
    assert import_json(kapok, CLEAN)[0] == 0
    before = events(ledger)

    code, report = import_json(kapok, CLEAN)

    assert code == 0
    assert set(report) >= REPORT_KEYS
    assert (report["blocks_new"], report["blocks_known"], report["tonnes_new"]) == (0, 14, 0)
    assert events(ledger) == before


def test_a_row_overlapping_a_known_block_differently_is_refused(kapok, ledger, tmp_path):
    first = write_export(tmp_path / "first.csv", block(FIRST, LAST))
    assert import_json(kapok, first)[0] == 0
    before = events(ledger)
    shifted = write_export(tmp_path / "shifted.csv", block(FIRST + 5_000, LAST + 5_000))

    code, report = import_json(kapok, shifted)

    assert code == 1
    assert [(r["line"], r["serial"]) for r in report["refused"]] == [
        (2, serial(FIRST + 5_000, LAST + 5_000))]
    assert "overlaps a block Kapok already knows" in report["refused"][0]["why"]
    assert events(ledger) == before


def test_a_known_block_shown_retired_without_a_pending_retirement_is_refused(kapok, ledger,
                                                                             tmp_path):
    assert import_json(kapok, write_export(tmp_path / "a.csv", block(FIRST, LAST)))[0] == 0
    before = events(ledger)
    later = write_export(tmp_path / "b.csv", block(FIRST, FIRST + 99, "Someone Else"),
                         block(FIRST + 100, LAST))

    code, report = import_json(kapok, later)

    assert code == 1 and report["refused"][0]["line"] == 2
    assert "reconcile" in report["refused"][0]["why"]
    assert events(ledger) == before


@pytest.mark.parametrize("arguments, message", [
    (["missing.csv", "--project", PROJECT], "does not exist"),
    ([fixture("README.md"), "--project", PROJECT], "not a Verra VCU export"),
    ([CLEAN, "--project", "1067"], "VCS-<id>"),
    ([CLEAN, "--project", "GS-1067"], "VCS-<id>"),
    ([CLEAN], "--project"),
])
def test_a_malformed_command_line_or_file_exits_2_and_writes_nothing(kapok, ledger,
                                                                      arguments, message):
    code, out, err = kapok("registry", "import", *arguments)

    assert code == 2
    assert message in err
    assert events(ledger) == 0


def test_an_account_name_kapok_would_refuse_is_refused(ledger):
    with pytest.raises(InvalidCommandError, match="invalid account name"):
        ledger.import_registry_export(rows_of(CLEAN), PROJECT, account="no such account!")


def test_blocks_are_never_imported_into_an_escrow_or_the_buffer_pool(ledger):
    ledger.open_account("escrow-of-someone", kind="escrow")

    with pytest.raises(InvalidCommandError, match="escrow account"):
        ledger.import_registry_export(rows_of(CLEAN), PROJECT, account="escrow-of-someone")
    assert ledger.get_account("escrow-of-someone").balance == 0


def test_a_kapok_native_project_cannot_be_mirrored(ledger):
    ledger.register_project(project_details(PROJECT))

    with pytest.raises(MirroredProjectError, match="Kapok's own"):
        ledger.import_registry_export(rows_of(CLEAN), PROJECT)


def test_issuing_into_a_mirrored_project_is_refused(ledger):
    ledger.import_registry_export(rows_of(CLEAN), PROJECT)

    with pytest.raises(MirroredProjectError, match="never issues"):
        ledger.issue(PROJECT, 2021, 10)


def test_serials_stay_verras_through_transfers_and_retirements(ledger, tmp_path):
    ledger.import_registry_export(rows_of(write_export(tmp_path / "a.csv", block(FIRST, LAST))),
                                  PROJECT)
    ledger.open_account("acme")

    moved = ledger.transfer(VERRA_HOLDING, "acme", quantity=2_500)
    retired = ledger.retire("acme", RetirementClaim("Acme", "Other"), quantity=1_000)

    assert moved["serials"] == [serial(FIRST, FIRST + 2_499)]
    assert retired["serials"] == [serial(FIRST, FIRST + 999)]
    assert [b.serial for b in ledger.get_account("acme").blocks] == [
        serial(FIRST + 1_000, FIRST + 2_499)]
    assert [b.serial for b in ledger.get_account(VERRA_HOLDING).blocks] == [
        serial(FIRST + 2_500, LAST)]
    assert [b.serial for b in ledger.get_retirement(retired["retirement_id"]).blocks] == [
        serial(FIRST, FIRST + 999)]
    assert BATCH == int(retired["serials"][0].split("-")[0])
