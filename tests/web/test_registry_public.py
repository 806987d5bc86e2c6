"""What buyers and the public see of credits mirrored from Verra: the registry of record of
each project, Verra's serials, and the phase at Verra of each retirement of them (pending,
confirmed, failed) on the public registry, the portfolio and the certificate.

VCS-3005 is mirrored beside the demo (tests/web/mirrored.py); a retirement of Kapok's own
credits (KAP-AF-01) has no phase."""

from __future__ import annotations

import html
import re
import secrets

import pytest

from ledger.domain.serials import SerialRange
from tests.conftest import settled
from tests.pdf_text import page_text
from tests.web.conftest import post_form
from tests.web.mirrored import (BUYER_ACCOUNT, CONFIRMED_ON, HOLDING, RETIRED_SERIAL, TAIL_2022,
                                VERRA_PAGE, import_export, native_retirement, pending_retirement)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def words(markup: str) -> str:
    """What a reader reads: the text without its tags, spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", markup))


def row_of(page: str, retirement_id: str) -> str:
    """The words of the page's table row that names the retirement."""
    return words(next(row for row in re.findall(r"<tr>.*?</tr>", page, re.S)
                      if retirement_id in row))


@pytest.fixture
def pending(market) -> str:
    retirement_id = pending_retirement(market.ledger)
    settled(market)
    return retirement_id


def confirmed(market, retirement_id: str) -> None:
    market.ledger.confirm_registry_retirement(retirement_id, [RETIRED_SERIAL],
                                              CONFIRMED_ON)
    settled(market)


def failed(market, retirement_id: str) -> None:
    market.ledger.fail_registry_retirement(retirement_id, "beneficiary name refused by Verra")
    settled(market)


def test_the_public_registry_shows_each_retirements_phase_at_verra(anonymous, market, pending):
    own = native_retirement(market.ledger)
    settled(market)
    page = text(anonymous.get("/registry"))
    assert "pending at Verra" in row_of(page, pending)
    assert "Verra" not in row_of(page, own)  # Kapok's own serials: final at once

    confirmed(market, pending)
    assert f"confirmed at Verra on {CONFIRMED_ON}" in row_of(text(anonymous.get("/registry")),
                                                        pending)


@pytest.mark.parametrize("settle, says", [
    (None, ["Pending at Verra: Verra is the registry of record", "pending at Verra"]),
    (confirmed, [f"confirmed at Verra on {CONFIRMED_ON} with serial {RETIRED_SERIAL}"]),
    (failed, ["failed: beneficiary name refused by Verra; credits returned",
              "Verra refused this retirement", "refused at Verra"]),
])
def test_a_retirements_page_says_where_it_stands_at_verra(anonymous, market, pending, settle,
                                                          says):
    if settle:
        settle(market, pending)

    page = text(anonymous.get(f"/registry/{pending}"))

    for sentence in says:
        assert sentence in words(page)
    assert f"<code>{RETIRED_SERIAL}</code>" in page  # Verra's own serial for the block
    assert f'href="{VERRA_PAGE}"' in page


def test_the_registry_finds_a_retirement_by_its_verra_serial(anonymous, pending):
    for query in (RETIRED_SERIAL, RETIRED_SERIAL.lower(),
                  f"19380-941382600-941382600-{TAIL_2022}"):  # one serial inside it
        page = text(anonymous.get("/registry", query_string={"q": query}))
        assert pending in page, query
    for query in (f"19380-941382555-941382654-{TAIL_2022[:-2]}", "19380-1-2-VCS-VCU-X"):
        response = anonymous.get("/registry", query_string={"q": query})
        assert response.status_code == 200 and pending not in text(response)


def test_a_mirrored_projects_page_names_verra_the_registry_of_record(anonymous, pending):
    page = text(anonymous.get("/projects/VCS-3005"))
    assert "Verra (Kapok mirrors its serials)" in page and f'href="{VERRA_PAGE}"' in page
    assert "Held in Kapok" in page and "not stated by the registry" in page

    native = text(anonymous.get("/projects/KAP-AF-01"))
    assert "Kapok (Kapok issues and numbers its credits)" in native
    assert "registry.verra.org" not in native
    assert "registry of record: <a" in text(anonymous.get("/projects"))


def test_the_portfolio_shows_verras_serials_and_the_phase_of_each_retirement(
        buyer, market, pending):
    page = text(buyer.get("/my/portfolio"))
    assert "pending at Verra" in row_of(page, pending)

    failed(market, pending)
    page = text(buyer.get("/my/portfolio"))
    assert "failed: beneficiary name refused by Verra; credits returned" in row_of(page,
                                                                                  pending)
    assert f"<code>{RETIRED_SERIAL}</code>" in page  # held again, with Verra's serial


def test_a_buyer_retires_mirrored_credits_by_their_verra_serial(buyer, market):
    import_export(market.ledger)
    wanted = SerialRange(941383000, 941383009)
    market.ledger.transfer(HOLDING, BUYER_ACCOUNT, serials=wanted)
    settled(market)
    serial = f"19380-941383000-941383009-{TAIL_2022}"

    response = post_form(buyer, "/my/portfolio/retire", {
        "quantity": "", "serials": serial, "beneficiary": "Rosa's Roastery Team",
        "reason": "Corporate Emissions Inventory Accounting", "claim_type": "offset",
        "nonce": secrets.token_urlsafe(16)})

    assert response.status_code == 302, text(response)[:2000]
    page = text(buyer.get("/my/portfolio"))
    assert "pending at Verra: Kapok has locked the serials" in page
    retirement_id = re.search(r"(KAP-RET-[0-9A-Z]+), pending at Verra", page).group(1)
    retirement = market.ledger.get_retirement(retirement_id)
    assert [block.serial for block in retirement.blocks] == [serial]
    assert retirement.registry_phase == "pending"


def test_a_pending_certificate_says_so_and_gives_verras_serial_and_page(buyer, market, pending):
    pdf = buyer.get(f"/my/retirements/{pending}/certificate.pdf")

    assert pdf.status_code == 200
    written = re.sub(r"\s+", "", page_text(pdf.data))
    assert "PENDINGATVERRA" in written
    assert RETIRED_SERIAL in written and VERRA_PAGE in written

    confirmed(market, pending)
    written = re.sub(r"\s+", "", page_text(buyer.get(
        f"/my/retirements/{pending}/certificate.pdf").data))
    assert "PENDING" not in written
    assert f"confirmedatVerraon{CONFIRMED_ON}withserial{RETIRED_SERIAL}" in written
