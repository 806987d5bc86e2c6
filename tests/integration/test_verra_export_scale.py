"""Reading a large Verra export streams it: memory stays flat however many rows it holds."""

from __future__ import annotations

import tracemalloc

import pytest

from ledger.adapters.verra_export import ExportRow, read_export
from testbed.verra_exports import write_export


@pytest.mark.slow
def test_reading_a_100000_row_export_keeps_memory_far_below_the_file_size(tmp_path):
    path = tmp_path / "export.csv"
    written = write_export(path, 100_000)
    size = path.stat().st_size

    tracemalloc.start()
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            taken = sum(1 for row in read_export(stream, 1067) if isinstance(row, ExportRow))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert taken == written.project_rows
    # About 40 MB on disk; the reader holds one row and the lines of one record at a time.
    assert size > 30_000_000
    assert peak < size / 100, (peak, size)
