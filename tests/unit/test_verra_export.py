"""Rules of reading Verra's VCU export: every row taken, skipped or refused saying why."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from ledger.adapters.verra_export import (
    EXPORT_COLUMNS,
    MAX_LINE,
    ExportFormatError,
    ExportRow,
    RefusedRow,
    SkippedRow,
    read_export,
)
from ledger.domain.errors import InvalidInputError, kind_of
from testbed.verra_exports import (
    TAMBOPATA,
    export_row,
    verra_serial_text,
    write_export,
    write_rows,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "verra"


def read_fixture(name: str, project_id: int | None = 1067) -> list:
    with open(FIXTURES / name, encoding="utf-8", newline="") as stream:
        return list(read_export(stream, project_id))


def csv_text(*rows: list[str], header=EXPORT_COLUMNS) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def read_text(text: str, project_id: int | None = 1067) -> list:
    return list(read_export(io.StringIO(text, newline=""), project_id))


def a_row(**changes: str) -> list[str]:
    """A valid active row of project 1067 (batch 17000, 10,000 t of 2021), with cells changed
    by column name (spaces and slashes as underscores)."""
    row = export_row(1067, 17000, 700_000_001, 700_010_000, 2021, 30_000, retired=False)
    names = {column.replace(" ", "_").replace("/", "_"): at
             for at, column in enumerate(EXPORT_COLUMNS)}
    for name, value in changes.items():
        row[names[name]] = value
    return row


def refusal(**changes: str) -> str:
    [row] = read_text(csv_text(a_row(**changes)))
    assert isinstance(row, RefusedRow), row
    return row.why


# --- The fixtures ------------------------------------------------------------------------

def test_the_clean_export_reads_every_row_with_its_fields():
    rows = read_fixture("vcs1067_export.csv")

    assert all(isinstance(row, ExportRow) for row in rows)
    assert [row.line for row in rows] == list(range(2, 16))
    assert sum(row.quantity for row in rows) == 218_150
    assert sum(row.quantity for row in rows if row.retired) == 4_250
    assert {row.vintage for row in rows} == {2019, 2020, 2021, 2022, 2023}
    first = rows[0]
    assert first == ExportRow(
        line=2, project_id=1067, name=TAMBOPATA, country_area="Peru",
        project_type="Agriculture Forestry and Other Land Use", methodology="VM0007",
        issuance_date=date(2021, 5, 12), vintage_start=date(2019, 1, 1),
        vintage_end=date(2019, 12, 31), vintage=2019, total_vintage_quantity=36_800,
        quantity=1_500, serial=first.serial, labels=("CCB Biodiversity Gold",),
        sdgs=(1, 8, 13, 15), retired_on=date(2023, 3, 15),
        beneficiary="Andes Coffee Roasters S.A.C.",
        reason="Retirement for Person or Organization",
        details="Offsetting the 2022 emissions of its roasting plant (illustrative)")
    assert first.serial.text == (
        "14211-612000001-612001500-VCS-VCU-263-VER-PE-14-1067-01012019-31122019-1")
    assert rows[1].serial.batch == 14211 and not rows[1].retired


def test_the_newer_export_differs_in_three_blocks():
    before = {row.serial.text: row for row in read_fixture("vcs1067_export.csv")}
    after = read_fixture("vcs1067_export_newer.csv")

    changed = [row.line for row in after if row.serial.text not in before
               or before[row.serial.text].retired != row.retired]

    assert changed == [9, 13, 16]
    assert after[7].beneficiary == "Unrelated Buyer Ltd."
    assert (after[11].serial.first, after[11].quantity) == (861_335_001, 14_200)


def test_the_mixed_export_reads_both_formats_multiline_fields_and_skips_other_projects():
    rows = read_fixture("vcs1067_mixed.csv")

    assert [(type(row).__name__, row.line) for row in rows] == [
        ("ExportRow", 2), ("ExportRow", 3), ("SkippedRow", 5), ("ExportRow", 6),
        ("ExportRow", 7), ("SkippedRow", 8), ("ExportRow", 9)]
    older, retired = rows[0], rows[1]
    assert older.serial.program is None and older.serial.batch == retired.serial.batch == 3012
    assert (older.vintage_start, older.vintage) == (date(2010, 7, 1), 2011)
    assert retired.beneficiary == "Lima Logistics Corp., Peru"
    assert retired.details == ("Retired for the 2015 inventory.\n"
                               'Scope 1 and 2, "market-based" (illustrative)')
    assert [rows[2].project_id, rows[5].project_id] == [3005, 641]
    assert rows[3].labels == ("CCB Biodiversity Gold", "CORSIA 2024-2026", "CCP",
                              "Article 6 Authorized")
    assert rows[3].quantity + rows[4].quantity == rows[4].total_vintage_quantity == 28_571
    assert rows[6].labels == ("Social Carbon", "CCB Community Gold")


def test_without_a_project_every_row_is_read_and_checked():
    rows = read_fixture("vcs1067_mixed.csv", project_id=None)

    assert all(isinstance(row, ExportRow) for row in rows)
    assert [row.project_id for row in rows] == [1067, 1067, 3005, 1067, 1067, 641, 1067]
    assert rows[5].serial.kind == "MER"


def test_the_refused_fixture_names_each_refused_line_and_why():
    rows = read_fixture("vcs1067_refused.csv")

    refused = {row.line: row.why for row in rows if isinstance(row, RefusedRow)}
    assert [row.line for row in rows if isinstance(row, ExportRow)] == [2, 5]
    assert list(refused) == [3, 4, 6, 7]
    assert "has 11 parts" in refused[3]
    assert refused[4] == ("the serial range 700015001-700020000 holds 5,000 units but "
                          "Quantity Issued is 5,100")
    assert "Vintage End '31/12/2021' is not a date YYYY-MM-DD" in refused[6]
    assert refused[7] == "the serial names project 1068, the ID column 1067"
    assert rows[1].serial == "17001-700010001-700015000-VCS-VCU-263-VER-PE-14-1067-01012021"


def test_overlapping_rows_are_each_read_for_the_importer_to_refuse():
    rows = read_fixture("vcs1067_overlap.csv")

    assert [row.serial.batch for row in rows] == [18500, 18500, 18501]
    assert rows[1].serial.first <= rows[0].serial.last


# --- Rows --------------------------------------------------------------------------------

def test_quantities_with_and_without_thousands_separators_are_read():
    rows = read_text(csv_text(a_row(Quantity_Issued="10,000", Total_Vintage_Quantity="30000")))

    assert (rows[0].quantity, rows[0].total_vintage_quantity) == (10_000, 30_000)


def test_cells_are_read_without_surrounding_blanks():
    row = a_row(Quantity_Issued=" 10,000 ", Name="  Tambopata  ", ID=" 1067 ")
    row[11] = f"  {row[11]}\t"

    [read] = read_text(csv_text(row))

    assert (read.quantity, read.name, read.project_id) == (10_000, "Tambopata", 1067)


@pytest.mark.parametrize("quantity", ["0", "-10000", "1,00,00", "10000.0", "10 000", "", "١٠"])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(quantity):
    why = refusal(Quantity_Issued=quantity)

    assert "Quantity Issued" in why and ("is not a whole number" in why or "at least 1" in why)


def test_a_quantity_that_differs_from_the_serial_range_is_refused():
    assert refusal(Quantity_Issued="9,999") == (
        "the serial range 700000001-700010000 holds 10,000 units but Quantity Issued is 9,999")


def test_a_serial_of_another_project_than_the_row_is_refused():
    serial = verra_serial_text(3005, 17000, 700_000_001, 700_010_000, 2021)

    assert refusal(Serial_Number=serial) == "the serial names project 3005, the ID column 1067"


def test_a_vintage_that_disagrees_with_the_serial_is_refused():
    assert refusal(Vintage_Start="2021-01-02") == (
        "the vintage 2021-01-02 to 2021-12-31 differs from the serial's 2021-01-01 to "
        "2021-12-31")


@pytest.mark.parametrize("column, value, why", [
    ("Issuance_Date", "2023/03/01", "Issuance Date '2023/03/01' is not a date YYYY-MM-DD "
                                    "(slash dates are ambiguous)"),
    ("Issuance_Date", "", "Issuance Date '' is not a date YYYY-MM-DD"),
    ("Vintage_End", "2021-02-30", "Vintage End '2021-02-30' is not a calendar date"),
    ("Retirement_Cancellation_Date", "30/06/2024",
     "Retirement/Cancellation Date '30/06/2024' is not a date YYYY-MM-DD"),
    ("Retirement_Cancellation_Date", "2024-06-30T00:00:00", "is not a date YYYY-MM-DD"),
])
def test_a_date_that_is_not_iso_is_refused(column, value, why):
    assert why in refusal(**{column: value})


def test_a_serial_that_does_not_parse_is_refused_with_the_serial_as_written():
    [row] = read_text(csv_text(a_row(Serial_Number="17000-1-10000")))

    assert row == RefusedRow(2, "17000-1-10000", row.why)
    assert row.why.startswith("the serial number: Verra serial '17000-1-10000' has 3 parts")


@pytest.mark.parametrize("column", ["Retirement_Beneficiary", "Name", "Retirement_Reason"])
def test_a_control_character_in_text_is_refused(column):
    assert refusal(**{column: "Andes\x00Coffee"}) == (
        f"{column.replace('_', ' ')} contains the "
        "control character U+0000: only printable text is accepted")


def test_line_breaks_are_kept_in_retirement_details_only():
    [row] = read_text(csv_text(a_row(Retirement_Details="line one\nline two")))
    assert row.details == "line one\nline two"

    assert "U+000A" in refusal(Retirement_Beneficiary="Andes\nCoffee")


def test_overlong_text_is_refused():
    assert refusal(Retirement_Details="x" * 501) == (
        "Retirement Details is longer than 500 characters")


def test_sdg_garbage_is_refused_and_sdg_prose_is_read():
    assert "is not a goal" in refusal(Sustainable_Development_Goals="lots of goals")

    [row] = read_text(csv_text(a_row(Sustainable_Development_Goals="SDG 13, SDG 15")))
    assert row.sdgs == (13, 15)


def test_a_retired_row_has_its_date_and_an_active_row_none():
    retired = export_row(1067, 17000, 700_000_001, 700_000_500, 2021, 30_000, retired=True)

    [active, taken] = read_text(csv_text(a_row(), retired))

    assert (active.retired, active.retired_on) == (False, None)
    assert (taken.retired, taken.retired_on) == (True, date(2024, 6, 30))
    assert taken.beneficiary == "Buyer 17000, Lima"


def test_a_row_with_too_few_or_too_many_fields_is_refused():
    short = a_row()[:-2]
    long = a_row() + ["extra"]

    rows = read_text(csv_text(short, long))

    assert [row.why for row in rows] == ["the row has 15 fields, the header 17",
                                         "the row has 18 fields, the header 17"]


def test_blank_lines_are_passed_over_and_lines_still_counted():
    text = csv_text(a_row()) + "\r\n" + ",,,\r\n" + csv_text(a_row()).split("\r\n", 1)[1]

    assert [row.line for row in read_text(text)] == [2, 5]


def test_rows_of_other_projects_are_skipped_unchecked_with_their_project():
    garbage = a_row(ID="3005", Serial_Number="not a serial", Quantity_Issued="lots")

    skipped, taken = read_text(csv_text(garbage, a_row()))

    assert skipped == SkippedRow(2, 3005)
    assert isinstance(taken, ExportRow) and taken.line == 3


def test_a_row_whose_id_is_not_a_project_id_is_refused_even_when_skipping():
    [row] = read_text(csv_text(a_row(ID="Tambopata")))

    assert row.why == "ID 'Tambopata' is not a Verra project id"


def test_an_id_written_as_vcs_dash_number_is_read():
    [row] = read_text(csv_text(a_row(ID="VCS-1067")))

    assert row.project_id == 1067


# --- The file ----------------------------------------------------------------------------

def test_a_byte_order_mark_and_extra_columns_are_accepted():
    header = ("\ufeff" + EXPORT_COLUMNS[0],) + EXPORT_COLUMNS[1:] + ("Verra's new column",)

    [row] = read_text(csv_text(a_row() + ["anything"], header=header))

    assert isinstance(row, ExportRow)


def test_columns_are_found_by_name_in_any_order():
    header = tuple(reversed(EXPORT_COLUMNS))

    [row] = read_text(csv_text(list(reversed(a_row())), header=header))

    assert row.quantity == 10_000


@pytest.mark.parametrize("text, why", [
    ("", "the file is empty"),
    ("\r\n\r\n", "lacks the column(s) 'Issuance Date'"),
    ("Serial Number,Quantity\r\n1-2-3,4\r\n", "lacks the column(s) 'Issuance Date', "
                                             "'Sustainable Development Goals'"),
    (csv_text(header=EXPORT_COLUMNS + ("ID",)), "names the column(s) 'ID' twice"),
    ('"Issuance Date"x,ID\r\n', "line 1: not CSV"),
])
def test_a_file_that_is_not_a_verra_export_is_refused_whole(text, why):
    with pytest.raises(ExportFormatError, match=why.replace("(", r"\(").replace(")", r"\)")):
        read_text(text)


def test_a_file_that_is_not_utf8_is_refused_with_its_line():
    data = csv_text(a_row()).encode() + "Société Générale,".encode("latin-1") + b"\r\n"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")

    with pytest.raises(ExportFormatError, match=r"the file is not UTF-8 text \(invalid "
                                                r"continuation byte at or after line 1\)"):
        list(read_export(stream))


def test_a_malformed_quote_after_good_rows_is_refused_with_its_line():
    text = csv_text(a_row()) + '2023-01-01,"unclosed"x\r\n'

    with pytest.raises(ExportFormatError, match="line 3: not CSV"):
        read_text(text)


def test_a_line_of_absurd_length_is_refused_without_reading_it_whole():
    text = csv_text(a_row()) + "x" * (MAX_LINE + 10)

    with pytest.raises(ExportFormatError, match="line 3 is longer than 1,048,576 characters"):
        read_text(text)


def test_an_export_format_error_is_bad_input():
    assert kind_of(ExportFormatError) is InvalidInputError


# --- Generated exports -------------------------------------------------------------------

def test_a_generated_export_is_valid_and_its_serials_never_overlap():
    stream = io.StringIO(newline="")
    written = write_export(stream, 500, other_projects=(3005, 641), retired_every=3)

    rows = read_text(stream.getvalue())

    taken = [row for row in rows if isinstance(row, ExportRow)]
    assert len(rows) == written.rows == 500
    assert len(taken) == written.project_rows
    assert sum(row.quantity for row in taken) == written.project_tonnes
    assert sum(row.quantity for row in taken if row.retired) == written.retired_tonnes
    assert {row.project_id for row in rows if isinstance(row, SkippedRow)} == {3005, 641}
    assert {row.serial.program for row in taken} == {"VCS", None}
    spans = sorted((row.serial.first, row.serial.last) for row in taken)
    assert all(before[1] < after[0] for before, after in zip(spans, spans[1:]))
    batches = {}
    for row in taken:
        batches.setdefault(row.serial.batch, set()).add(row.retired)
    assert {True, False} in batches.values()


def test_rows_written_one_by_one_read_back_as_written():
    stream = io.StringIO(newline="")
    write_rows(stream, [a_row(), export_row(1067, 17001, 700_010_001, 700_010_500, 2022, 500,
                                            retired=True, old_format=True)])

    active, retired = read_text(stream.getvalue())

    assert stream.getvalue().startswith("Issuance Date,Sustainable Development Goals,")
    assert (active.quantity, retired.quantity, retired.serial.program) == (10_000, 500, None)
    assert retired.retired and not active.retired

