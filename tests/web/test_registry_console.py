"""The console's Verra page: retirements of mirrored credits pending at Verra, recording Verra's
confirmation or refusal, the last reconciliation of each mirrored project and the quarantine.

VCS-3005 is mirrored beside the demo (tests/web/mirrored.py): the demo buyer retires its
first 100 t of vintage 2022, pending at Verra until an operator records Verra's answer."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.serials import SerialRange
from testbed.stores import seed_demo
from tests.conftest import settled
from tests.web.conftest import LOGINS, log_in, post_form, served
from tests.web.mirrored import (BUYER_ACCOUNT, CONFIRMED_ON, HOLDING, RETIRED_SERIAL, TAIL_2022,
                                claim, native_retirement, pending_retirement, reconcile)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def confirm(client, retirement_id: str, serials: str = RETIRED_SERIAL, on: str | None = None):
    return post_form(client, f"/console/registry/{retirement_id}/confirm",
                     {"serials": serials, "retired_on": on or date.today().isoformat()})


def held(market, account: str, project: str = "VCS-3005") -> int:
    return sum(row["quantity"] for row in settled(market).view.balances(
        account=account, project=project, status="held"))


@pytest.fixture
def pending(market) -> str:
    retirement_id = pending_retirement(market.ledger)
    settled(market)  # as a page will show it
    return retirement_id


def test_the_console_lists_pending_retirements_oldest_first_with_their_verra_serials(
        operator, market, pending):
    later_serials = SerialRange(941382655, 941382704)
    market.ledger.transfer(HOLDING, BUYER_ACCOUNT, serials=later_serials)
    later = market.ledger.retire(BUYER_ACCOUNT, claim("Lima Logistics S.A."),
                                 serials=later_serials)
    settled(market)

    page = operator.get("/console/registry")
    shown = text(page)

    assert page.status_code == 200
    assert 'href="/console/registry" aria-current="page"' in shown  # in the navigation
    assert shown.index(pending) < shown.index(later["retirement_id"])  # oldest first
    assert RETIRED_SERIAL in shown and f"19380-941382655-941382704-{TAIL_2022}" in shown
    assert "Andes Coffee Roasters S.A.C." in shown and "Lima Logistics S.A." in shown
    assert "0 d" in shown  # their age


def test_an_operator_records_verras_confirmation(operator, market, pending):
    response = confirm(operator, pending, on=CONFIRMED_ON.isoformat())

    assert response.status_code == 302, text(response)
    retirement = market.ledger.get_retirement(pending)
    assert (retirement.registry_phase, retirement.registry_serials,
            retirement.registry_date) == ("confirmed", (RETIRED_SERIAL,), CONFIRMED_ON)
    page = text(operator.get("/console/registry"))
    assert f"is confirmed at Verra on {CONFIRMED_ON}" in page
    assert f'<tr id="{pending}">' not in page  # no longer pending


@pytest.mark.parametrize("serials, on, says", [
    ("", None, "This field is required."),
    ("   ", None, "This field is required."),
    ("19380-941382555-VCS-VCU", None, "expected 13"),
    ("19380-941382555-941382654-VCS-VCU-1310-XXX-CN-13-3005-01012022-31102022-0", None,
     "neither VER nor MER"),
    # a real serial, but not the block the retirement locked
    (f"19380-941382555-941382600-{TAIL_2022}", None, "are not the same"),
    (RETIRED_SERIAL, (date.today() + timedelta(days=1)).isoformat(), "later than today"),
    (RETIRED_SERIAL, "", "This field is required."),
    (RETIRED_SERIAL, "01/12/2026", "Not a valid date value."),
])
def test_a_confirmation_that_does_not_fit_is_shown_again_beside_its_field(
        operator, market, pending, serials, on, says):
    response = post_form(operator, f"/console/registry/{pending}/confirm",
                         {"serials": serials,
                          "retired_on": date.today().isoformat() if on is None else on})

    shown = text(response)
    assert response.status_code == 400
    assert re.search(r'<small class="error">[^<]*' + re.escape(says), shown), shown[-3000:]
    assert serials.strip() in shown  # what was typed is kept
    assert market.ledger.get_retirement(pending).registry_phase == "pending"


def test_confirming_twice_or_an_unknown_retirement_is_refused_with_a_page(
        operator, market, pending):
    assert confirm(operator, pending).status_code == 302

    again = confirm(operator, pending)
    unknown = confirm(operator, "KAP-RET-000000000000")
    own = confirm(operator, native_retirement(market.ledger))

    assert again.status_code == 409 and "already confirmed" in text(again)
    assert unknown.status_code == 404 and "KAP-RET-000000000000" in text(unknown)
    assert own.status_code == 409 and "Kapok's own serials" in text(own)
    for response in (again, unknown, own):
        assert "Verra registry" in text(response)  # the console's page, with its navigation


def test_failing_a_retirement_asks_first_then_returns_its_credits(operator, market, pending):
    before = held(market, BUYER_ACCOUNT)
    path = f"/console/registry/{pending}/fail"

    asked = post_form(operator, path, {"reason": "Verra: beneficiary name refused"})
    assert asked.status_code == 200
    assert "Fail retirement" in text(asked) and "Verra: beneficiary name refused" in text(asked)
    assert market.ledger.get_retirement(pending).registry_phase == "pending"

    done = post_form(operator, path, {"reason": "Verra: beneficiary name refused",
                                      "confirmed": "yes"})
    assert done.status_code == 302, text(done)
    retirement = market.ledger.get_retirement(pending)
    assert (retirement.registry_phase, retirement.failure) == (
        "failed", "Verra: beneficiary name refused")
    assert held(market, BUYER_ACCOUNT) == before + 100


def test_failing_a_retirement_on_delivery_returns_its_credits_to_the_buyer(operator, market):
    # The demo's sale of VCS-1067 retired at once for Andes Coffee Roasters: from the order's
    # escrow, pending at Verra.
    row = next(row for row in settled(market).view.pending_retirement_rows()
               if row["account"].startswith("escrow-"))
    before = held(market, BUYER_ACCOUNT, "VCS-1067")
    path = f"/console/registry/{row['retirement_id']}/fail"
    listed = text(operator.get("/console/registry"))
    assert f"order <a href=\"/console/orders/{market.view.order_of_escrow(row['account'])}" \
        in listed

    asked = text(post_form(operator, path, {"reason": "refused"}))
    assert f"go back to <code>{BUYER_ACCOUNT}</code>" in asked

    assert post_form(operator, path, {"reason": "refused", "confirmed": "yes"}
                     ).status_code == 302
    assert held(market, BUYER_ACCOUNT, "VCS-1067") == before + row["quantity"]


def test_a_failure_needs_a_reason_and_a_pending_retirement(operator, market, pending):
    blank = post_form(operator, f"/console/registry/{pending}/fail", {"reason": " "})
    assert blank.status_code == 400 and "This field is required." in text(blank)

    assert confirm(operator, pending).status_code == 302
    late = post_form(operator, f"/console/registry/{pending}/fail", {"reason": "late"})
    assert late.status_code == 409 and "not pending at Verra" in text(late)
    tampered = post_form(operator, f"/console/registry/{pending}/fail",
                         {"reason": "x", "confirmed": "maybe"})
    assert tampered.status_code == 400
    assert market.ledger.get_retirement(pending).registry_phase == "confirmed"


def test_verras_answer_needs_the_forms_csrf_token_and_an_operator(
        operator, buyer, auditor, market, pending):
    form = {"serials": RETIRED_SERIAL, "retired_on": date.today().isoformat()}
    assert operator.post(f"/console/registry/{pending}/confirm", data=form).status_code == 400
    for client in (buyer, auditor):
        assert confirm(client, pending).status_code == 403
        assert post_form(client, f"/console/registry/{pending}/fail",
                         {"reason": "x", "confirmed": "yes"}).status_code == 403
    assert market.ledger.get_retirement(pending).registry_phase == "pending"


def test_the_last_reconciliation_shows_each_difference_and_the_quarantine(
        operator, market, pending):
    assert "never reconciled" in text(operator.get("/console/registry"))
    run = reconcile(market.ledger)
    settled(market)

    page = text(operator.get("/console/registry"))

    assert run["run_id"] in page and "2 differences" in page
    assert "retired at Verra while Kapok held them" in page
    assert "1,000 t of ecosphere-verra quarantined" in page
    assert "at Verra, unknown to Kapok" in page and "import the export" in page
    quarantine = page[page.index("<h2>Quarantined"):]
    assert "VCS-3005" in quarantine and "2021" in quarantine and "1,000" in quarantine



def test_a_mirrored_projects_console_page_shows_verras_blocks_and_no_issue_form(
        operator, market, pending):
    page = text(operator.get("/console/projects/VCS-3005"))

    assert "Credits from Verra" in page and "/console/projects/VCS-3005/issuances" not in page
    assert f"19380-941392555-941394554-{TAIL_2022}" in page  # retired at Verra before import
    assert "retired 2024-05-10 for Shanghai Tea Traders Co." in page
    assert 'href="https://registry.verra.org/app/projectDetail/VCS/3005"' in page
    native = text(operator.get("/console/projects/KAP-AF-01"))
    assert "/console/projects/KAP-AF-01/issuances" in native and "Credits from Verra" not in native



def test_the_dashboard_counts_retirements_pending_at_verra(operator, market, pending):
    count = len(market.view.pending_retirements())
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text(operator.get("/console/"))))
    assert count >= 1
    assert f"{count} retirement{'s' if count != 1 else ''} pending at Verra" in page


VERRA_LIKE = st.one_of(st.text(max_size=120), st.from_regex(
    r"[0-9]{1,20}(-[0-9A-Za-z]{0,12}){2,14}", fullmatch=True))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(serials=VERRA_LIKE, on=st.text(max_size=20))
def test_any_text_as_verras_answer_is_recorded_or_refused_never_a_failure(
        operator, market, pending, serials, on):
    response = post_form(operator, f"/console/registry/{pending}/confirm",
                         {"serials": serials, "retired_on": on})
    assert response.status_code in (302, 400, 409), (serials, on, response.status_code)
    if response.status_code == 302:  # only the very serial locked, on a day until today
        assert market.ledger.get_retirement(pending).registry_serials == (RETIRED_SERIAL,)

# --- the same on PostgreSQL ----------------------------------------------------------------

@pytest.fixture
def postgres_app(postgres_url, tmp_path, monkeypatch):
    seed_demo(postgres_url)
    yield from served(postgres_url, tmp_path, monkeypatch)


@pytest.mark.postgres
def test_a_retirement_goes_from_pending_to_confirmed_at_verra_on_postgresql(postgres_app):
    market = postgres_app.extensions["kapok_market"]
    clients = {}
    for role in ("operator", "auditor"):
        clients[role] = postgres_app.test_client()
        log_in(clients[role], *LOGINS[role])
    anonymous = postgres_app.test_client()
    # A mirrored retirement, pending at Verra; a reconciliation that finds two differences.
    retirement_id = pending_retirement(market.ledger)
    run = reconcile(market.ledger)
    settled(market)
    page = text(clients["operator"].get("/console/registry"))
    assert retirement_id in page and RETIRED_SERIAL in page and "2 differences" in page
    assert "pending at Verra" in text(anonymous.get("/registry"))

    # The operator records Verra's confirmation; everyone sees it.
    assert confirm(clients["operator"], retirement_id, on=CONFIRMED_ON.isoformat()).status_code == 302
    settled(market)
    listed = anonymous.get("/api/v1/retirements?page_size=100").get_json()["items"]
    row = next(item for item in listed if item["retirement_id"] == retirement_id)
    assert (row["registry_phase"], row["registry_serials"], row["registry_date"]) == (
        "confirmed", [RETIRED_SERIAL], CONFIRMED_ON.isoformat())
    assert "confirmed at Verra" in text(anonymous.get(f"/registry?q={RETIRED_SERIAL}"))
    assert run["run_id"] in text(clients["auditor"].get("/auditor/registry-checks"))
