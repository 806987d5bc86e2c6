"""The auditors' list of every reconciliation of a mirrored project with Verra: newest first,
a page at a time, each run with its differences; read-only, and for auditors alone.

VCS-3005 is mirrored beside the demo (tests/web/mirrored.py); the newer export differs from
Kapok in two ways (1,000 t retired at Verra while Kapok held them, 3,000 t unknown)."""

from __future__ import annotations

import html
import re

from tests.conftest import settled
from tests.web.mirrored import import_export, reconcile


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def run_ids(page: str) -> list[str]:
    return re.findall(r"<h2><code>(KAP-REC-[0-9A-Z]+)</code>", page)


def test_auditors_read_every_reconciliation_newest_first_a_page_at_a_time(auditor, market):
    import_export(market.ledger)
    runs = [reconcile(market.ledger, "vcs3005_export.csv")["run_id"] for _ in range(20)]
    runs.append(reconcile(market.ledger)["run_id"])
    settled(market)

    first = text(auditor.get("/auditor/registry-checks"))
    second = text(auditor.get("/auditor/registry-checks?page=2"))

    assert run_ids(first) == runs[::-1][:20] and run_ids(second) == [runs[0]]
    assert "21 runs in all" in first and 'href="/auditor/registry-checks?page=2"' in first
    newest = first[:first.index(runs[-2])]
    assert "2 differences" in newest and "retired at Verra while Kapok held them" in newest
    assert "1,000 t of ecosphere-verra quarantined" in newest
    assert "at Verra, unknown to Kapok" in newest and "3,000" in newest
    assert "in step" in second and "vcs3005_export.csv" in second


def test_the_reconciliations_page_is_read_only_and_for_auditors(auditor, operator, buyer):
    assert "No reconciliation has been run yet." in text(auditor.get("/auditor/registry-checks"))
    assert auditor.post("/auditor/registry-checks").status_code == 405
    for client in (operator, buyer):
        assert client.get("/auditor/registry-checks").status_code == 403
    for page in ("0", "x", "-1", "9" * 30):
        assert auditor.get(f"/auditor/registry-checks?page={page}").status_code == 400, page
