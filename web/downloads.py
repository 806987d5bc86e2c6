"""Files the site hands out, shared by the buyers' pages and the API."""

from __future__ import annotations

from flask import Response, current_app, request

from documents.certificate import certificate_facts, certificate_pdf
from web.consistency import read_view


def certificate_response(market, retirement_id: str) -> Response:
    """A retirement's certificate as a PDF download; its QR code leads to the public record
    (at KAPOK_PUBLIC_URL, else the address the request came to)."""
    read_view()  # the certificate names the order of a retire-at-once retirement from it
    base = current_app.config.get("PUBLIC_URL") or request.url_root
    record = f"{base.rstrip('/')}/registry/{retirement_id}"
    pdf = certificate_pdf(certificate_facts(market, retirement_id, record))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="kapok-certificate-{retirement_id}.pdf"'})
