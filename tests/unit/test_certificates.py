"""Retirement certificates as PDF: what they state, and that no text a buyer types breaks them."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from documents.certificate import (BenefitShares, CertificateFacts, OrderSplit,
                                   RegistryStanding, SerialLine, certificate_pdf)
from tests.pdf_text import page_text

URL = "https://kapok.example/registry/KAP-RET-7F3K9Q2M4XBD"


def facts(**changes) -> CertificateFacts:
    base = CertificateFacts(
        retirement_id="KAP-RET-7F3K9Q2M4XBD", beneficiary="Andes Coffee Roasters S.A.C.",
        quantity=120, retired_at=datetime(2026, 3, 1, 14, 30, tzinfo=timezone.utc),
        reason="Corporate Emissions Inventory Accounting", details="2025 roasting (demo)",
        claim_type="offset", use="voluntary", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31),
        serials=(SerialLine("KAP-1-1000001-1000120-VCS1067-2019-PE", "VCS-1067", 2019, 120),),
        projects=(("VCS-1067", "Tambopata REDD+"),), verification_url=URL,
        rules=(BenefitShares("VCS-1067", 1, datetime(2026, 1, 1, tzinfo=timezone.utc),
                             (("aider-field-programme", Decimal(25)),
                              ("ecosphere-fee", Decimal(15)), ("farmers", Decimal(60)))),),
    )
    return replace(base, **changes)


def outlined_characters(pdf: bytes) -> dict[str, list[bool]]:
    """For each character the pages' embedded fonts can draw: whether each glyph that draws
    it has an outline (a missing glyph is an empty box). Read from the fonts themselves:
    each code, through the font's ToUnicode map to a character, and through the embedded
    TrueType file's own cmap to a glyph. A font that is not embedded draws nothing here."""
    found: dict[str, list[bool]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is None or "/FontFile2" not in descriptor.get_object():
                continue
            embedded = TTFont(io.BytesIO(descriptor.get_object()["/FontFile2"].get_data()))
            by_code = {code: glyph for table in embedded["cmap"].tables
                       for code, glyph in table.cmap.items()}
            glyf = embedded["glyf"]
            to_unicode = font["/ToUnicode"].get_object().get_data().decode("latin-1")
            for code, unicode in re.findall(r"<([0-9A-F]{2})> <([0-9A-F]{4,})>", to_unicode):
                glyph = by_code.get(int(code, 16), ".notdef")
                found.setdefault(chr(int(unicode, 16)), []).append(
                    glyph != ".notdef" and glyf[glyph].numberOfContours != 0)
    return found


def test_a_certificate_is_a_pdf_stating_beneficiary_tonnes_serials_and_where_to_verify():
    pdf = certificate_pdf(facts(), compress=False, invariant=True)
    assert pdf.startswith(b"%PDF")
    for text in (b"Andes Coffee Roasters S.A.C.", b"120 tonnes CO2e", b"KAP-RET-7F3K9Q2M4XBD",
                 b"KAP-1-1000001-1000120-VCS1067-2019-PE", b"2019", URL.encode(),
                 b"2025-01-01 to 2025-12-31", b"Corporate Emissions Inventory Accounting"):
        assert text in pdf, text


def test_a_certificate_states_the_benefit_sharing_rule_and_the_order_split():
    order = OrderSplit("KAP-ORD-ABC", "fulfilled", "USD 1750.00",
                       (("aider-field-programme", "USD 437.50"), ("ecosphere-fee", "USD 262.50"),
                        ("farmers", "USD 1050.00")))
    text = page_text(certificate_pdf(facts(order=order)))
    assert "farmers 60%" in text and "ecosphere-fee 15%" in text
    assert "version 1, in force from 2026-01-01" in text
    assert "Order KAP-ORD-ABC (fulfilled) paid USD 1750.00" in text
    assert "USD 1050.00" in text


def test_a_certificate_without_a_rule_or_order_says_so():
    text = page_text(certificate_pdf(facts(rules=())))
    assert "No benefit-sharing rule is recorded" in text
    assert "retired from the buyer's own holding" in text


def test_the_compressed_certificate_carries_the_same_text():
    pdf = certificate_pdf(facts())
    assert pdf.startswith(b"%PDF")
    assert b"Andes Coffee Roasters" not in pdf  # compressed: only inflated is it readable
    assert "Andes Coffee Roasters S.A.C." in page_text(pdf)


def test_an_invariant_certificate_is_byte_for_byte_reproducible():
    assert certificate_pdf(facts(), invariant=True) == certificate_pdf(facts(), invariant=True)


@pytest.mark.parametrize("beneficiary", [
    "<b>Bold</b> & <script>alert(1)</script> <para>",
    "Café Ñandú, Cusco — “Qhapaq Ñan”",
    "東京コーヒー 🌳",
    "x" * 500,
    "Tab\there, nul\x00 and bell\x07",
    "(unbalanced paren \\ backslash",
])
def test_no_beneficiary_text_breaks_the_certificate(beneficiary):
    pdf = certificate_pdf(facts(beneficiary=beneficiary, details=beneficiary, reason=beneficiary))
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")


def test_markup_in_a_beneficiary_is_printed_as_text_not_interpreted():
    text = page_text(certificate_pdf(facts(beneficiary="<b>ACME</b> & Co")))
    assert "<b>ACME</b> & Co" in text


EVERY_SCRIPT = "Москва Кофе 北京咖啡 Αθήνα Café"


def test_a_beneficiary_in_cyrillic_chinese_and_greek_prints_in_embedded_fonts():
    pdf = certificate_pdf(facts(beneficiary=EVERY_SCRIPT))
    assert EVERY_SCRIPT in page_text(pdf)
    outlined = outlined_characters(pdf)
    for character in set(EVERY_SCRIPT) - {" "}:
        assert character in outlined, f"no embedded font draws {character!r}"
        assert all(outlined[character]), f"{character!r} is drawn as an empty box"


def test_a_certificate_in_every_script_stays_small():
    assert len(certificate_pdf(facts(beneficiary=EVERY_SCRIPT, details=EVERY_SCRIPT))) < 100_000


# --- serials mirrored from Verra -----------------------------------------------------------

VERRA_SERIAL = "19380-941382555-941382654-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
VERRA_PAGE = "https://registry.verra.org/app/projectDetail/VCS/3005"


def mirrored(standing: RegistryStanding) -> CertificateFacts:
    return facts(quantity=100, serials=(SerialLine(VERRA_SERIAL, "VCS-3005", 2022, 100),),
                 projects=(("VCS-3005", "Illustrative Wind Power Project"),), rules=(),
                 registry=standing, registry_urls=(("VCS-3005", VERRA_PAGE),))


def joined(pdf: bytes) -> str:
    """The text with line breaks and spaces left out: a long serial may wrap."""
    return re.sub(r"\s+", "", page_text(pdf))


def test_a_pending_certificate_says_it_is_not_yet_a_retirement_at_verra():
    pdf = certificate_pdf(mirrored(RegistryStanding("pending")))

    assert "PENDINGATVERRA" in joined(pdf)
    assert "notevidenceofaretirementatVerra" in joined(pdf)
    assert VERRA_SERIAL in joined(pdf) and VERRA_PAGE in joined(pdf)
    assert "Verraserial" in joined(pdf)


def test_a_confirmed_certificate_gives_verras_date_and_serial():
    pdf = certificate_pdf(mirrored(RegistryStanding("confirmed", (VERRA_SERIAL,),
                                                    date(2026, 12, 1))))

    assert f"confirmedatVerraon2026-12-01withserial{VERRA_SERIAL}" in joined(pdf)
    assert "PENDING" not in joined(pdf)


def test_a_failed_certificate_says_it_is_void():
    pdf = certificate_pdf(mirrored(RegistryStanding("failed", failure="beneficiary refused")))

    assert "FAILEDATVERRA:beneficiaryrefused" in joined(pdf) and "void" in joined(pdf)


def test_a_kapok_certificate_names_kapok_the_registry_of_record():
    assert "Kapokistheregistryofrecordoftheseserials" in joined(certificate_pdf(facts()))
