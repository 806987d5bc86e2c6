"""Rules of Verra's serials, and of Verra's certification and SDG texts read as Kapok's."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import InvalidCommandError, InvalidSerialError
from ledger.domain.verra import (
    MAX_VERRA_SERIAL_TEXT,
    VerraSerial,
    format_verra_serial,
    kapok_labels,
    parse_verra_serial,
    verra_project_url,
    verra_sdgs,
)

CURRENT = "19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
OLDER = "4147-176338408-176338907-VCU-016-MER-AU-14-641-16042012-15042013-0"


def test_a_current_13_part_serial_is_read_part_by_part():
    serial = parse_verra_serial(CURRENT)

    assert (serial.batch, serial.first, serial.last) == (19380, 941382555, 941412554)
    assert serial.tail == "VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
    assert (serial.program, serial.unit_type, serial.internal_code, serial.kind) == (
        "VCS", "VCU", "1310", "VER")
    assert (serial.country, serial.scope, serial.project_id, serial.flag) == ("CN", 13, 3005, 0)
    assert (serial.vintage_start, serial.vintage_end) == (date(2022, 1, 1), date(2022, 10, 31))
    assert serial.vintage == 2022
    assert serial.quantity == 30_000


def test_an_older_12_part_serial_has_no_program_and_keeps_its_leading_zeros():
    serial = parse_verra_serial(OLDER)

    assert serial.program is None
    assert (serial.unit_type, serial.internal_code, serial.kind, serial.country) == (
        "VCU", "016", "MER", "AU")
    assert (serial.scope, serial.project_id) == (14, 641)
    assert (serial.vintage_start, serial.vintage_end) == (date(2012, 4, 16), date(2013, 4, 15))
    assert serial.vintage == 2013
    assert serial.quantity == 500


@pytest.mark.parametrize("text", [CURRENT, OLDER])
def test_a_serial_prints_as_it_was_read(text):
    serial = parse_verra_serial(text)

    assert serial.text == text
    assert format_verra_serial(serial.batch, serial.first, serial.last, serial.tail) == text
    assert VerraSerial.of(serial.batch, serial.first, serial.last, serial.tail) == serial


def test_a_projects_public_page_at_verra_is_named_by_its_id():
    assert verra_project_url(1067) == "https://registry.verra.org/app/projectDetail/VCS/1067"


def test_a_sub_range_keeps_the_batch_and_the_tail():
    piece = parse_verra_serial(CURRENT).sub(941382555, 941382741)

    assert piece.text == "19380-941382555-941382741-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
    assert piece.quantity == 187


@pytest.mark.parametrize("first, last", [(941382554, 941382600), (941412000, 941412555),
                                         (941400000, 941399999)])
def test_a_sub_range_outside_the_block_is_refused(first, last):
    with pytest.raises(InvalidSerialError, match="is not inside Verra serial block 19380-"):
        parse_verra_serial(CURRENT).sub(first, last)


def test_a_serial_is_immutable_and_never_copied():
    serial = parse_verra_serial(CURRENT)

    assert copy.deepcopy(serial) is serial


def test_serials_order_by_batch_then_first_serial():
    later = parse_verra_serial(CURRENT).sub(941400000, 941412554)
    earlier = parse_verra_serial(CURRENT).sub(941382555, 941399999)

    assert sorted([later, parse_verra_serial(OLDER), earlier]) == [
        parse_verra_serial(OLDER), earlier, later]


@pytest.mark.parametrize("text, why", [
    ("", "has 1 parts"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022", "has 11 parts"),
    (CURRENT + "-7", "has 14 parts"),
    ("KAP-12-1000001-1008500-VCS1067-2021-PE", "has 7 parts"),
    ("19380-941382555-941382554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
     "the last serial 941382554 is before the first 941382555"),
    ("19380-9413825x5-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
     "the first serial '9413825x5' is not valid"),
    ("19380-٩41382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
     "the first serial"),
    ("19380- 941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
     "the first serial"),
    ("0-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
     "batch and serials start at 1"),
    ("19380-941382555-941412554-VCS-VCU-1310-XER-CN-13-3005-01012022-31102022-0",
     "'XER' is neither VER nor MER"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-Cn-13-3005-01012022-31102022-0",
     "the country 'Cn'"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-31022022-31102022-0",
     "31022022 is not a date"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-0101202-31102022-0",
     "the vintage start '0101202'"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012023-31102022-0",
     r"the vintage ends \(31102022\) before it starts \(01012023\)"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-133-3005-01012022-31102022-0",
     "the sectoral scope '133'"),
    ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-30x5-01012022-31102022-0",
     "the project id"),
    ("19380-1234567890123456789-1234567890123456790-VCS-VCU-1310-VER-CN-13-3005-01012022-"
     "31102022-0", "the first serial"),
])
def test_anything_but_a_verra_serial_is_refused_saying_why(text, why):
    with pytest.raises(InvalidSerialError, match=why):
        parse_verra_serial(text)


def test_an_absurdly_long_serial_is_refused_by_its_length():
    with pytest.raises(InvalidSerialError, match=f"is too long: 10,000 characters, at most "
                                                 f"{MAX_VERRA_SERIAL_TEXT}"):
        parse_verra_serial("1-" * 5_000)


def test_a_serial_that_is_not_text_is_refused():
    with pytest.raises(InvalidSerialError, match="must be text"):
        parse_verra_serial(19380)


def test_a_block_that_ends_before_it_starts_cannot_be_built():
    serial = parse_verra_serial(CURRENT)

    with pytest.raises(InvalidSerialError, match="invalid Verra serial block 19380: 10-9"):
        dataclasses.replace(serial, first=10, last=9)


TAILS = st.sampled_from([parse_verra_serial(CURRENT).tail, parse_verra_serial(OLDER).tail])


@given(batch=st.integers(1, 10**9), first=st.integers(1, 10**15),
       size=st.integers(0, 10**6), tail=TAILS)
def test_format_then_parse_gives_back_the_same_block(batch, first, size, tail):
    serial = parse_verra_serial(format_verra_serial(batch, first, first + size, tail))

    assert (serial.batch, serial.first, serial.last, serial.tail) == (
        batch, first, first + size, tail)
    assert serial.quantity == size + 1
    assert parse_verra_serial(serial.text) == serial


@given(st.data())
def test_a_sub_range_lies_inside_its_block_and_reads_back_the_same(data):
    block = parse_verra_serial(CURRENT)
    first = data.draw(st.integers(block.first, block.last))
    last = data.draw(st.integers(first, block.last))

    piece = block.sub(first, last)

    assert parse_verra_serial(piece.text) == piece
    assert piece.quantity == last - first + 1
    assert (piece.batch, piece.tail, piece.project_id) == (block.batch, block.tail, 3005)


# --- Additional Certifications -------------------------------------------------------------

@pytest.mark.parametrize("verra, kapok", [
    ("ICVCM CCP", ("CCP",)),
    ("CORSIA - First Phase, 2024-2026 Scope", ("CORSIA 2024-2026",)),
    ("CORSIA - Pilot Phase, 2021-2023 Scope", ("CORSIA 2021-2023",)),
    ("CORSIA", ("CORSIA",)),
    ("Article 6 Authorized \u2013 NDC Use", ("Article 6 Authorized",)),
    ("Article 6 Authorized - NDC Use", ("Article 6 Authorized",)),
    ("CCB-Biodiversity Gold", ("CCB Biodiversity Gold",)),
    ("CCB-Climate Gold", ("CCB Climate Gold",)),
    ("CCB-No Distinction", ("CCB",)),
    ("Social Carbon", ("Social Carbon",)),
    ("", ()),
    ("  ", ()),
])
def test_verra_certifications_become_kapok_labels(verra, kapok):
    assert kapok_labels(verra) == kapok


def test_a_cell_of_several_certifications_keeps_corsias_own_comma():
    cell = ("ICVCM CCP; CORSIA - First Phase, 2024-2026 Scope, Article 6 Authorized \u2013 NDC "
            "Use;CCB-Biodiversity Gold")

    assert kapok_labels(cell) == (
        "CCP", "CORSIA 2024-2026", "Article 6 Authorized", "CCB Biodiversity Gold")


def test_an_unknown_certification_is_kept_as_it_reads_never_dropped():
    assert kapok_labels("Plan  Vivo; ICVCM CCP; ICVCM CCP") == ("Plan Vivo", "CCP")


def test_a_certification_with_a_control_character_is_refused():
    with pytest.raises(InvalidCommandError, match="control character U\\+0007"):
        kapok_labels("CCB; Plan\aVivo")


def test_an_overlong_certification_is_refused():
    with pytest.raises(InvalidCommandError, match="longer than 80 characters"):
        kapok_labels("x" * 81)


# --- Sustainable Development Goals ---------------------------------------------------------

@pytest.mark.parametrize("verra, goals", [
    ("13: Climate Action; 15: Life on Land", (13, 15)),
    ("15; 13; 13", (13, 15)),
    ("13, 15", (13, 15)),
    ("SDG 1, SDG 8", (1, 8)),
    ("16: Peace, Justice and Strong Institutions; 5: Gender Equality", (5, 16)),
    ("Climate Action; life on land", (13, 15)),
    ("", ()),
])
def test_verra_sdgs_become_goal_numbers(verra, goals):
    assert verra_sdgs(verra) == goals


@pytest.mark.parametrize("verra", ["18: Something", "0", "Climate stuff", "13; ???"])
def test_sdg_text_that_names_no_goal_is_refused(verra):
    with pytest.raises(InvalidCommandError, match="is not a goal"):
        verra_sdgs(verra)
