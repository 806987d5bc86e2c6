"""Verra exports for the registry-of-record tests: the fixtures, and small exports of one
batch of VCS-1067 that a test writes as Verra would show that batch later."""

from __future__ import annotations

from pathlib import Path

from ledger.adapters.verra_export import EXPORT_COLUMNS, read_export
from testbed.verra_exports import export_row, write_rows
from tests.integration.command_line import in_process

FIXTURES = Path(__file__).parents[1] / "fixtures" / "verra"
PROJECT, VINTAGE = "VCS-1067", 2021
# One batch of 10,000 t the small exports hold, apart from every fixture's serials.
BATCH, FIRST, LAST = 30_001, 800_000_001, 800_010_000
TAIL = f"VCS-VCU-263-VER-PE-14-1067-0101{VINTAGE}-3112{VINTAGE}-1"
BENEFICIARY = "Acme Carbon Ltd."
_BENEFICIARY = EXPORT_COLUMNS.index("Retirement Beneficiary")


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def rows_of(path: str | Path, project_id: int = 1067):
    """The reader the import and reconciliation use cases take: the file's rows afresh."""

    def rows():
        with open(path, encoding="utf-8", newline="") as stream:
            yield from read_export(stream, project_id)

    return rows


def serial(first: int, last: int, batch: int = BATCH) -> str:
    """Verra's printed serial of serials first..last of the small exports' batch."""
    return f"{batch}-{first}-{last}-{TAIL}"


def block(first: int, last: int, retired_for: str | None = None,
          batch: int = BATCH) -> list[str]:
    """A row of the batch: active, or retired at Verra for ``retired_for``."""
    row = export_row(1067, batch, first, last, VINTAGE, LAST - FIRST + 1,
                     retired=retired_for is not None)
    if retired_for is not None:
        row[_BENEFICIARY] = retired_for
    return row


def write_export(path: Path, *rows: list[str]) -> str:
    write_rows(path, rows)
    return str(path)


def split_batch(path: Path, retired: dict[tuple[int, int], str]) -> str:
    """The batch as Verra shows it after retiring each (first, last) of ``retired`` for its
    beneficiary: the retired ranges and the active ranges between them."""
    rows, at = [], FIRST
    for (first, last), beneficiary in sorted(retired.items()):
        if at < first:
            rows.append(block(at, first - 1))
        rows.append(block(first, last, beneficiary))
        at = last + 1
    if at <= LAST:
        rows.append(block(at, LAST))
    return write_export(path, *rows)


def events(app) -> int:
    """How many events the store holds."""
    return app.recorder.max_notification_id() or 0


def signing_kapok(monkeypatch, capsys, database_url: str, tmp_path):
    """`kapok ARGS...` in-process on the test's store, with a signing key of its own (the
    worker and `audit verify --follow` sign)."""
    run = in_process(monkeypatch, capsys, database_url,
                     KAPOK_SIGNING_KEY_FILE=str(tmp_path / "keys" / "signing.pem"))
    assert run("audit", "keygen")[0] == 0
    return run
