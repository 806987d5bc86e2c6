"""A PDF's text as a reader extracts it, for tests of the certificates and the pages that
serve them."""

from __future__ import annotations

import io

from pypdf import PdfReader


def page_text(pdf: bytes) -> str:
    """The text drawn on the pages, as a PDF reader extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
