"""The ``kapok`` command line run in-process by tests."""

from __future__ import annotations

from cli import main


def in_process(monkeypatch, capsys, database_url: str, **environment: str):
    """A function running ``kapok ARGS...`` on ``database_url`` with ``environment`` set;
    it returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("KAPOK_DATABASE_URL", database_url)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def run(*args: str):
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
