"""CSV cells that a spreadsheet would run as formulas are neutralised; other cells are kept.
Fields are read from the stored bytes as docs/AUDIT.md says, serials as the domain prints them."""

from __future__ import annotations

import pytest

from ledger.audit.export import neutralise
from ledger.audit.verifier import read_state, read_value
from ledger.domain.serials import SerialBlock


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example")', "+1", "-1+2", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_a_cell_that_would_start_a_formula_is_quoted(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "108", "KAP-RET-1", '{"beneficiary": "=1"}', "a=b"])
def test_other_cells_are_left_as_they_are(cell):
    assert neutralise(cell) == cell


@pytest.mark.parametrize("block", [SerialBlock(2019, 1, 1000001, 1000120, "VCS-1067", "PE"),
                                   SerialBlock(2024, 12, 7, 7, "kap-af-01", "BR")])
def test_a_stored_serial_block_reads_as_the_serial_the_domain_prints(block):
    assert read_value({"_type_": "block", "_data_": block.to_list()}) == block.serial


def test_a_state_reads_as_its_event_timestamp_and_unwrapped_fields():
    state = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-08T00:51:06+00:00"},'
             b'"claim":{"_type_":"claim","_data_":{"beneficiary":"A","period_end":'
             b'{"_type_":"date","_data_":"2025-12-31"}}},"quantity":3}')

    assert read_state("ledger.domain.retirements:Retirement.Recorded", state) == {
        "event": "Retirement.Recorded", "timestamp": "2026-12-08T00:51:06+00:00",
        "fields": {"claim": {"beneficiary": "A", "period_end": "2025-12-31"}, "quantity": 3}}


@pytest.mark.parametrize("state", [b"{not json", b"[1]", b'{"quantity": 3}',
                                   b'{"timestamp":"t","b":{"_type_":"block","_data_":[1]}}'])
def test_a_state_kapok_could_not_have_written_does_not_read(state):
    with pytest.raises(ValueError):
        read_state("a:B", state)
