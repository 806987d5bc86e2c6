"""Retirement certificates as PDF: what they state, and that no text a buyer types breaks them."""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from web.certificates import (BenefitShares, CertificateFacts, OrderSplit, SerialLine,
                              certificate_pdf)

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


def page_text(pdf: bytes) -> str:
    """The text drawn on the pages, one line per text object: the content streams decoded
    (ReportLab compresses with ASCII85 over Flate) and their string operands joined and
    unescaped. Enough for the standard fonts' Latin-1 text; no PDF library needed."""
    lines = []
    for stream in re.findall(rb"stream\r?\n(.*?)\s*endstream", pdf, re.S):
        data = stream.strip()
        if data.endswith(b"~>"):
            data = zlib.decompress(base64.a85decode(data[:-2]))
        for block in re.findall(rb"\bBT\s(.*?)\sET\b", data, re.S):
            strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", block, re.S)
            text = b"".join(re.sub(rb"\\(.)", rb"\1", string) for string in strings)
            lines.append(text.decode("latin-1"))
    return "\n".join(lines)


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
