"""CSV cells that a spreadsheet would run as formulas are neutralised; other cells are kept."""

from __future__ import annotations

import pytest

from ledger.audit.export import neutralise


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example")', "+1", "-1+2", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_a_cell_that_would_start_a_formula_is_quoted(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "108", "KAP-RET-1", '{"beneficiary": "=1"}', "a=b"])
def test_other_cells_are_left_as_they_are(cell):
    assert neutralise(cell) == cell
