"""A mirrored vintage: how a registry's row stands against the ranges it knows, and copies
handed to commands that change apart from the original."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.adapters.store import copy_aggregate
from ledger.domain.mirror import (CONFLICT, KNOWN, NEW, RETIRED_INSIDE_ACTIVE, MirroredVintage,
                                  RegistryRange)

TAIL = "VCS-VCU-263-VER-PE-14-1067-01012021-31122021-1"
ON = date(2026, 6, 30)


def active(first: int, last: int, batch: int = 7) -> RegistryRange:
    return RegistryRange(batch, first, last, TAIL)


def retired(first: int, last: int, batch: int = 7) -> RegistryRange:
    return RegistryRange(batch, first, last, TAIL, ON, "Acme")


@pytest.fixture
def vintage() -> MirroredVintage:
    known = MirroredVintage("VCS-1067", 2021)
    known.record((active(101, 200), retired(201, 250), active(1, 50, batch=8)), "import")
    return known


@pytest.mark.parametrize("row, standing", [
    (active(101, 200), KNOWN),
    (active(120, 130), KNOWN),
    (retired(201, 250), KNOWN),
    (active(301, 400), NEW),
    (active(1, 100), NEW),
    (retired(120, 130), RETIRED_INSIDE_ACTIVE),
    (active(90, 110), CONFLICT),
    (active(150, 220), CONFLICT),
    (active(201, 250), CONFLICT),
    (retired(210, 220), CONFLICT),
    (active(101, 200, batch=9), NEW),
])
def test_a_row_stands_against_the_known_ranges_of_its_batch(vintage, row, standing):
    assert vintage.classify(row) == standing


def test_a_range_retired_inside_an_active_one_splits_it(vintage):
    vintage.record((retired(120, 129),), "reconcile")

    assert vintage.batches["7"] == [[101, 120, 130, 201], [119, 129, 200, 250],
                                    ["active", "retired", "active", "retired"]]
    assert vintage.known_ranges(7, 115, 125) == [(101, 119, "active"), (120, 129, "retired")]


def test_a_copy_records_apart_from_the_vintage_it_was_copied_from(vintage):
    vintage.collect_events()  # as saved
    before = {key: [list(part) for part in lists] for key, lists in vintage.batches.items()}

    copied = copy_aggregate(vintage)
    copied.record((retired(120, 129), active(1_000, 1_999), active(51, 60, batch=8)), "import")

    assert vintage.batches == before and vintage.collect_events() == []
    assert copied.classify(retired(120, 129)) == KNOWN
    assert copied.classify(active(51, 60, batch=8)) == KNOWN
    assert vintage.classify(active(51, 60, batch=8)) == NEW
