"""Receipts (領収書), invoices (請求書) and their corrections as PDF, in the document's language.

Every PDF embeds (as a subset) the IPAex fonts shipped in ``portal/documents/fonts`` (IPA Font
License, ``LICENSE-IPA.txt``) for all its text, English and ¥ included, so it renders the same
in any viewer with no font installed, and ``pdftotext`` reads it. The layout (reportlab's
Platypus: wrapping paragraphs and tables, flowing onto more pages) is ``layout.py``, loaded on
first use, not in every worker (docs/performance.md: memory).
"""

from __future__ import annotations

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from portal.documents.models import Document

FONTS = Path(__file__).parent / "fonts"
GOTHIC = "IPAexGothic"
MINCHO = "IPAexMincho"
_registered = False
log = logging.getLogger(__name__)


def register_fonts() -> tuple[str, str]:
    """Register the embedded Japanese fonts once; returns (gothic, mincho) font names."""
    # reportlab is loaded on first use, not in every worker (docs/performance.md: memory).
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    global _registered
    if not _registered:
        pdfmetrics.registerFont(TTFont(GOTHIC, str(FONTS / "ipaexg.ttf")))
        pdfmetrics.registerFont(TTFont(MINCHO, str(FONTS / "ipaexm.ttf")))
        _registered = True
    return GOTHIC, MINCHO


_fonts = register_fonts


def stored_key(document: Document, language: str) -> str:
    """Where the document's PDF is kept: its id, issue time and language make it unique."""
    stamp = document.issued_at.strftime("%Y%m%dT%H%M%S%f")
    return f"documents/{document.series_id}/{document.id}-{stamp}-{language}.pdf"


def render_pdf(document: Document, language: str | None = None) -> bytes:
    """The document as an A4 PDF (one page or more) in its own language.

    ``language`` renders the same stored document with the fixed labels (title, dates, issuer
    name and address) in another language; the stored content (recipient, purpose, lines,
    amounts, number) is printed as issued, so the document does not change.

    The first rendering of a document in a language is kept in the file storage (a local
    folder, or S3 in production: ``portal/storage.py``) and every later request, on any
    machine, gets those same bytes, so the PDF a payer received is the PDF an auditor is
    shown, whatever changes later in the layout code or the issuer settings. (A document
    rendered in a transaction that then rolls back leaves a file no other document can be
    given: the key holds the issue time to the microsecond.)
    """
    from portal import storage
    from portal.documents.layout import build_pdf

    language = language or document.language
    if document.id is None or document.issued_at is None:
        return build_pdf(document, language)
    key = stored_key(document, language)
    backend = storage.storage()
    try:
        data = backend.read(key)
    except Exception:  # storage unreachable: draw it; the next request stores it
        log.warning("could not read the stored PDF %s", key, exc_info=True)
        return build_pdf(document, language)
    if data is None:
        data = build_pdf(document, language)
        try:
            backend.save(key, data, "application/pdf")
        except Exception:
            log.warning("could not store the PDF %s", key, exc_info=True)
    return data


def pdf_attachment(document: Document) -> tuple[str, str, bytes]:
    """The document as an email attachment: (file name, content type, PDF bytes)."""
    return (f"{document.reference}.pdf", "application/pdf", render_pdf(document))


def local_date(document: Document):
    return document.issued_at.astimezone(ZoneInfo(document.series.timezone)).date()
