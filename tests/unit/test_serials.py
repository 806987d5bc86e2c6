"""Rules of serial-block arithmetic: parsing, taking by quantity or by range, merging."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import InsufficientCreditsError, InvalidSerialError, SerialsNotHeldError
from ledger.domain.serials import (
    BlockSet,
    add_blocks,
    remove_blocks,
    SerialBlock,
    SerialRange,
    merge_blocks,
    take_quantity,
    take_range,
    total_quantity,
)


def block(first: int, last: int, batch: int = 1, vintage: int = 2021,
          project: str = "VCS-1067", country: str = "PE") -> SerialBlock:
    return SerialBlock(vintage, batch, first, last, project, country)


def spans(blocks) -> list[tuple[int, int]]:
    return [(b.first, b.last) for b in blocks]


# --- SerialBlock ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, last, quantity", [(1, 1, 1), (1_000_001, 1_008_500, 8_500), (5, 14, 10)]
)
def test_a_block_holds_first_to_last_inclusive(first, last, quantity):
    assert block(first, last).quantity == quantity


def test_a_block_prints_its_serial_in_the_documented_format():
    issued = block(1_000_001, 1_008_500, batch=12, vintage=2021, project="VCS-1067")

    assert issued.serial == "KAP-12-1000001-1008500-VCS1067-2021-PE"


def test_a_printed_serial_drops_every_hyphen_of_the_project_and_upper_cases_it():
    issued = block(7, 9, batch=3, vintage=2019, project="gs-12-a", country="BR")

    assert issued.serial == "KAP-3-7-9-GS12A-2019-BR"


@pytest.mark.parametrize("first, last", [(0, 5), (-1, 5), (0, 0), (5, 4), (2, 1)])
def test_cannot_make_a_block_that_starts_below_one_or_ends_before_it_starts(first, last):
    with pytest.raises(InvalidSerialError):
        block(first, last)


@pytest.mark.parametrize("first, last", [(10, 19), (10, 10), (19, 19), (12, 15)])
def test_a_sub_block_keeps_the_batch_vintage_project_and_country(first, last):
    whole = block(10, 19, batch=4, vintage=2020, project="VCS-981", country="PE")

    part = whole.sub(first, last)

    assert part == SerialBlock(2020, 4, first, last, "VCS-981", "PE")


@pytest.mark.parametrize("first, last", [(9, 12), (15, 20), (9, 20), (15, 14), (25, 30)])
def test_cannot_take_a_sub_block_outside_the_block(first, last):
    with pytest.raises(InvalidSerialError):
        block(10, 19).sub(first, last)


def test_a_block_survives_its_list_form():
    issued = block(1_000_001, 1_008_500, batch=12)

    assert SerialBlock.from_list(issued.to_list()) == issued


# --- SerialRange.parse ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, first, last",
    [
        ("1000001-1000100", 1_000_001, 1_000_100),
        ("1000001", 1_000_001, 1_000_001),
        ("  1000001-1000001\n", 1_000_001, 1_000_001),
        ("KAP-12-1000001-1008500-VCS1067-2021-PE", 1_000_001, 1_008_500),
        ("kap-12-1000001-1008500-vcs1067-2021-pe", 1_000_001, 1_008_500),
        (" KAP-3-7-9-GS12A-2019-BR ", 7, 9),
    ],
)
def test_parses_a_range_a_single_serial_or_a_printed_block_serial(text, first, last):
    assert SerialRange.parse(text) == SerialRange(first, last)


@pytest.mark.parametrize(
    "text, first, last",
    [
        ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
         941_382_555, 941_412_554),
        (" 4147-176338408-176338907-vcu-016-mer-au-14-641-16042012-15042013-0 ",
         176_338_408, 176_338_907),
    ],
)
def test_parses_a_verra_serial_in_either_format_as_its_range(text, first, last):
    assert SerialRange.parse(text) == SerialRange(first, last)


def test_a_mirrored_block_serial_parses_back_to_the_block_range():
    mirrored = SerialBlock(2022, 19380, 941_382_555, 941_382_654, "VCS-3005", "CN",
                           "VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0")

    assert SerialRange.parse(mirrored.serial) == SerialRange(mirrored.first, mirrored.last)


@pytest.mark.parametrize(
    "text, says",
    [
        ("19380-941412554-941382555-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
         "before the first"),
        ("19380-941382555-941412554-VCS-VCU-1310-XXX-CN-13-3005-01012022-31102022-0",
         "neither VER nor MER"),
        ("19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102021-0",
         "ends"),
        ("1-2-3-4-5-6-7-8-9-10-11-12-13-14", "14 parts"),
    ],
)
def test_a_malformed_verra_serial_is_refused_saying_what_is_wrong(text, says):
    with pytest.raises(InvalidSerialError, match=says):
        SerialRange.parse(text)


def test_a_printed_block_serial_parses_back_to_the_block_range():
    issued = block(1_000_001, 1_008_500, batch=12, project="VCS-1067")

    assert SerialRange.parse(issued.serial) == SerialRange(issued.first, issued.last)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "abc",
        "12a",
        "1000001-1000100x",
        "5-3",
        "0",
        "0-5",
        "-1",
        "1--2",
        "1-2-3",
        "1 - 2",
        "KAP-12-1000001-1008500-VCS-1067-2021-PE",  # hyphen left in the project
        "KAP-12-1008500-1000001-VCS1067-2021-PE",  # last before first
        "KAP-12-1000001-1008500-VCS1067-21-PE",  # two-digit vintage
        pytest.param("x" * 10_000, id="10000 letters"),
        pytest.param("1-" + "9" * 10_000, id="10000-digit last serial"),
        pytest.param("9" * 5_000, id="5000-digit serial"),
    ],
)
def test_cannot_parse_anything_but_a_range_a_serial_or_a_printed_serial(text):
    with pytest.raises(InvalidSerialError):
        SerialRange.parse(text)


# --- take_quantity -------------------------------------------------------------------------


def test_takes_the_oldest_vintage_first():
    held = sorted([block(101, 110, batch=2, vintage=2021), block(1, 10, batch=1, vintage=2019),
                   block(201, 210, batch=3, vintage=2020)])

    taken, remaining = take_quantity(held, 15)

    assert [(b.vintage, b.first, b.last) for b in taken] == [(2019, 1, 10), (2020, 201, 205)]
    assert [(b.vintage, b.first, b.last) for b in remaining] == [(2020, 206, 210),
                                                                   (2021, 101, 110)]


def test_within_a_vintage_takes_the_older_batch_first_then_the_lower_serials():
    held = sorted([block(51, 60, batch=2), block(21, 30, batch=1), block(1, 10, batch=1)])

    taken, _ = take_quantity(held, 12)

    assert [(b.batch, b.first, b.last) for b in taken] == [(1, 1, 10), (1, 21, 22)]


@pytest.mark.parametrize("quantity, taken_count", [(10, 1), (30, 2), (60, 3)])
def test_taking_whole_blocks_splits_nothing(quantity, taken_count):
    held = [block(1, 10), block(21, 40), block(41, 70, batch=2)]

    taken, remaining = take_quantity(held, quantity)

    assert taken == held[:taken_count]
    assert remaining == held[taken_count:]


def test_taking_part_of_a_block_splits_only_that_block():
    held = [block(1, 10), block(21, 40), block(41, 70, batch=2)]

    taken, remaining = take_quantity(held, 15)

    assert spans(taken) == [(1, 10), (21, 25)]
    assert spans(remaining) == [(26, 40), (41, 70)]
    assert remaining[1] is held[2]


def test_taking_everything_leaves_nothing():
    held = [block(1, 10), block(21, 40)]

    taken, remaining = take_quantity(held, 30)

    assert taken == held
    assert remaining == []


def test_taking_nothing_leaves_everything():
    held = [block(1, 10)]

    assert take_quantity(held, 0) == ([], held)


@pytest.mark.parametrize("held", [[], [block(1, 10)], [block(1, 10), block(21, 39)]])
def test_cannot_take_more_than_held_and_nothing_changes(held):
    before = list(held)

    with pytest.raises(InsufficientCreditsError, match=f"{total_quantity(held)} t held"):
        take_quantity(held, total_quantity(held) + 1)

    assert held == before


# --- take_range ----------------------------------------------------------------------------


def test_taking_from_the_middle_of_a_block_leaves_the_two_ends():
    held = [block(1, 100)]

    taken, remaining = take_range(held, SerialRange(40, 59))

    assert spans(taken) == [(40, 59)]
    assert spans(remaining) == [(1, 39), (60, 100)]


@pytest.mark.parametrize(
    "wanted, left",
    [
        (SerialRange(1, 10), [(11, 100)]),
        (SerialRange(91, 100), [(1, 90)]),
        (SerialRange(1, 1), [(2, 100)]),
        (SerialRange(100, 100), [(1, 99)]),
        (SerialRange(1, 100), []),
    ],
)
def test_taking_at_an_edge_of_a_block_leaves_one_piece_or_none(wanted, left):
    taken, remaining = take_range([block(1, 100)], wanted)

    assert spans(taken) == [(wanted.first, wanted.last)]
    assert spans(remaining) == left


def test_a_range_may_span_two_adjacent_blocks_of_a_batch():
    # Two pieces of batch 1 received at different times and kept apart.
    held = [block(1, 50), block(51, 100), block(201, 300, batch=2)]

    taken, remaining = take_range(held, SerialRange(41, 60))

    assert spans(taken) == [(41, 50), (51, 60)]
    assert spans(remaining) == [(1, 40), (61, 100), (201, 300)]


def test_taking_a_range_leaves_other_blocks_alone():
    held = [block(1, 10, vintage=2019), block(101, 110, batch=2), block(201, 210, batch=3)]

    taken, remaining = take_range(held, SerialRange(103, 104))

    assert spans(taken) == [(103, 104)]
    assert remaining == [held[0], block(101, 102, batch=2), block(105, 110, batch=2), held[2]]


@pytest.mark.parametrize(
    "wanted, missing",
    [
        (SerialRange(1, 5), 1),  # before every block
        (SerialRange(5, 12), 5),  # starts in a gap
        (SerialRange(28, 35), 31),  # runs off the end of a block into a gap
        (SerialRange(15, 45), 31),  # crosses two adjacent blocks, then meets a gap
        (SerialRange(55, 62), 61),  # runs off the last block
        (SerialRange(99, 99), 99),  # after every block
    ],
)
def test_cannot_take_serials_not_held_and_names_the_first_missing(wanted, missing):
    held = [block(10, 20), block(21, 30), block(41, 60)]
    before = list(held)

    with pytest.raises(SerialsNotHeldError) as raised:
        take_range(held, wanted)

    assert raised.value.missing == missing
    assert f"serial {missing} is missing" in str(raised.value)
    assert held == before


def test_taking_one_tonne_from_a_huge_block_makes_three_blocks_not_ten_million():
    # The work follows blocks, never tonnes: ten million tonnes split like ten.
    held = [block(1_000_001, 11_000_000)]

    taken, remaining = take_range(held, SerialRange(6_000_000, 6_000_000))

    assert len(taken) + len(remaining) == 3
    assert spans(taken) == [(6_000_000, 6_000_000)]
    assert spans(remaining) == [(1_000_001, 5_999_999), (6_000_001, 11_000_000)]


# --- merge_blocks --------------------------------------------------------------------------


def test_neighbours_of_one_batch_merge_into_one_block():
    merged = merge_blocks([block(21, 30), block(1, 10), block(11, 20)])

    assert merged == [block(1, 30)]


def test_blocks_of_one_batch_with_a_gap_stay_apart():
    assert merge_blocks([block(12, 20), block(1, 10)]) == [block(1, 10), block(12, 20)]


def test_neighbouring_serials_of_different_batches_stay_apart():
    merged = merge_blocks([block(11, 20, batch=2), block(1, 10, batch=1)])

    assert merged == [block(1, 10, batch=1), block(11, 20, batch=2)]


@pytest.mark.parametrize(
    "blocks",
    [
        [block(1, 10), block(10, 20)],
        [block(1, 10), block(1, 10)],
        [block(1, 100), block(40, 50)],
        [block(5, 15), block(1, 10)],
        [block(1, 10), block(11, 20), block(15, 30)],  # overlaps only after merging
    ],
)
def test_cannot_merge_overlapping_blocks_of_a_batch(blocks):
    with pytest.raises(InvalidSerialError, match="overlapping"):
        merge_blocks(blocks)


# --- properties ----------------------------------------------------------------------------

FIRST_SERIAL = 1_000_001


@st.composite
def holdings(draw) -> list[SerialBlock]:
    """Sorted, disjoint blocks as an account holds them.

    Batches take consecutive serials from one counter, as issuance does; each holds pieces
    separated by gaps (serials held elsewhere), and adjacent pieces may stay unmerged.
    """
    blocks: list[SerialBlock] = []
    cursor = FIRST_SERIAL
    for batch in range(1, draw(st.integers(1, 4)) + 1):
        vintage = draw(st.integers(2018, 2022))
        for gap, length in draw(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 30)),
                                         min_size=1, max_size=5)):
            cursor += gap
            blocks.append(block(cursor, cursor + length - 1, batch=batch, vintage=vintage))
            cursor += length
        cursor += draw(st.integers(0, 5))
    return sorted(blocks)


def serials_of(blocks) -> set[tuple[int, int]]:
    return {(b.batch, serial) for b in blocks for serial in range(b.first, b.last + 1)}


def as_ranges(blocks) -> list[tuple[int, int, int]]:
    """The serials held, as merged (batch, first, last); raises if blocks of a batch overlap."""
    return sorted((b.batch, b.first, b.last) for b in merge_blocks(blocks))


def assert_no_serial_in_two_blocks(blocks) -> None:
    ordered = sorted(blocks, key=lambda b: b.first)
    for before, after in zip(ordered, ordered[1:]):
        assert before.last < after.first, f"{before} overlaps {after}"


def assert_split_correctly(held, taken, remaining) -> None:
    assert_no_serial_in_two_blocks([*taken, *remaining])
    assert as_ranges([*taken, *remaining]) == as_ranges(held)
    assert serials_of(taken) | serials_of(remaining) == serials_of(held)
    assert total_quantity(taken) + total_quantity(remaining) == total_quantity(held)
    assert remaining == sorted(remaining)


@given(held=holdings(), data=st.data())
def test_taking_a_quantity_moves_exactly_that_many_oldest_serials(held, data):
    quantity = data.draw(st.integers(0, total_quantity(held)))

    taken, remaining = take_quantity(held, quantity)

    assert total_quantity(taken) == quantity
    assert_split_correctly(held, taken, remaining)
    assert len(taken) + len(remaining) <= len(held) + 1  # at most one block split
    if taken and remaining:
        assert max(taken) < min(remaining)  # nothing older is left behind


@given(held=holdings(), data=st.data())
def test_cannot_take_a_quantity_above_the_balance(held, data):
    excess = data.draw(st.integers(1, 1_000))

    with pytest.raises(InsufficientCreditsError):
        take_quantity(held, total_quantity(held) + excess)


@given(held=holdings(), data=st.data())
def test_taking_a_range_moves_exactly_its_serials_or_names_the_first_missing(held, data):
    low, high = held[0].first - 3, max(b.last for b in held) + 3
    first = data.draw(st.integers(low, high), label="first")
    last = data.draw(st.integers(first, min(high, first + 120)), label="last")
    held_serials = {serial for _, serial in serials_of(held)}
    missing = [serial for serial in range(first, last + 1) if serial not in held_serials]

    if missing:
        with pytest.raises(SerialsNotHeldError) as raised:
            take_range(held, SerialRange(first, last))
        assert raised.value.missing == missing[0]
        return

    taken, remaining = take_range(held, SerialRange(first, last))

    assert {serial for _, serial in serials_of(taken)} == set(range(first, last + 1))
    assert total_quantity(taken) == last - first + 1
    assert_split_correctly(held, taken, remaining)
    assert len(remaining) <= len(held) + 1  # only the two end blocks can be cut


@given(held=holdings(), data=st.data())
def test_merging_keeps_every_serial_and_leaves_no_neighbours_of_one_batch(held, data):
    shuffled = data.draw(st.permutations(held))

    merged = merge_blocks(shuffled)

    assert serials_of(merged) == serials_of(held)
    assert merged == sorted(merged)
    for before, after in zip(merged, merged[1:]):
        assert not (before.batch == after.batch and before.last + 1 == after.first)


# --- add_blocks / remove_blocks: what account events apply, in O(log n) per block -----------


@given(held=holdings(), data=st.data())
def test_adding_blocks_in_any_order_gives_the_merged_holding(held, data):
    shuffled = data.draw(st.permutations(held))

    assert add_blocks([], shuffled) == merge_blocks(held)


@given(held=holdings(), data=st.data())
def test_removing_what_was_taken_leaves_exactly_the_rest(held, data):
    merged = merge_blocks(held)
    quantity = data.draw(st.integers(0, total_quantity(merged)))
    taken, remaining = take_quantity(merged, quantity)

    assert remove_blocks(merged, taken) == remaining
    assert add_blocks(remaining, taken) == merged  # and giving them back restores it


def test_cannot_add_serials_already_held():
    with pytest.raises(InvalidSerialError):
        add_blocks([block(1, 10)], [block(10, 12)])


@pytest.mark.parametrize("removed, missing", [
    (block(5, 12), 11),    # runs past the end of the held block
    (block(20, 25), 20),   # not held at all
    (block(5, 6, batch=2), 5),  # same serials, another batch
])
def test_cannot_remove_serials_not_held_and_names_the_first_missing(removed, missing):
    with pytest.raises(SerialsNotHeldError) as error:
        remove_blocks([block(1, 10)], [removed])
    assert error.value.missing == missing


# --- BlockSet: the replay's compact holding, which must agree with the list functions ------


def _block(batch: int, first: int, last: int) -> SerialBlock:
    return SerialBlock(2020 + batch % 3, batch, first, last, "KAP-AF-01", "PE")


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3), st.integers(1, 60),
                          st.integers(0, 5)), max_size=60))
def test_a_block_set_holds_exactly_what_the_sorted_list_holds(operations):
    held: list[SerialBlock] = []
    block_set = BlockSet()
    for adding, batch, first, length in operations:
        block = _block(batch, first, first + length)
        if adding:
            try:
                expected = add_blocks(held, [block])
            except InvalidSerialError:
                with pytest.raises(InvalidSerialError):
                    block_set.add(block)
                continue
            block_set.add(block)
        else:
            try:
                expected = remove_blocks(held, [block])
            except SerialsNotHeldError as error:
                with pytest.raises(SerialsNotHeldError) as raised:
                    block_set.remove(block)
                assert raised.value.missing == error.missing
                continue
            block_set.remove(block)
        held = expected
        assert list(block_set) == held
        assert block_set.quantity == sum(b.quantity for b in held)
        assert len(block_set) == len(held)


def test_a_refused_block_changes_nothing_in_a_block_set():
    block_set = BlockSet([_block(1, 1, 10)])
    with pytest.raises(InvalidSerialError):
        block_set.add(_block(1, 10, 12))
    with pytest.raises(SerialsNotHeldError):
        block_set.remove(_block(1, 8, 11))
    assert list(block_set) == [_block(1, 1, 10)]
