"""Receipts and invoices as PDF, in the document's language.

Every PDF embeds (as a subset) the IPAex fonts shipped in ``portal/documents/fonts`` (IPA Font
License, ``LICENSE-IPA.txt``), so it renders the same in any viewer, with no font installed.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _

from portal.documents.models import Document, DocumentKind
from portal.i18n import format_money, format_short_date

FONTS = Path(__file__).parent / "fonts"
GOTHIC = "IPAexGothic"
MINCHO = "IPAexMincho"
_registered = False


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


def _title(document: Document) -> str:
    if document.is_cancellation:
        return _("Cancellation") if document.kind == DocumentKind.receipt else _("Credit note")
    return _("Receipt") if document.kind == DocumentKind.receipt else _("Invoice")


def render_pdf(document: Document, language: str | None = None) -> bytes:
    """The document as a one-page A4 PDF in its own language.

    ``language`` renders the same stored document with the fixed labels (title, dates, issuer
    name and address) in another language; the stored content (recipient, purpose, lines,
    amounts, number) is printed as issued, so the document does not change.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    _fonts()
    lang = language or document.language
    tz = document.series.timezone
    buffer = BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    width, height = A4
    issuer = document.issuer or {}
    with force_locale(lang):
        canvas.setTitle(f"{_title(document)} {document.reference}")
        y = height - 30 * mm
        canvas.setFont(MINCHO, 22)
        canvas.drawCentredString(width / 2, y, _title(document))
        canvas.setFont(GOTHIC, 10)
        y -= 12 * mm
        canvas.drawRightString(width - 20 * mm, y, _("No. %(number)s", number=document.reference))
        y -= 5 * mm
        canvas.drawRightString(
            width - 20 * mm,
            y,
            _("Date of issue: %(date)s", date=format_short_date(document.issued_at, tz, lang)),
        )
        if document.replaces is not None:
            y -= 5 * mm
            canvas.drawRightString(
                width - 20 * mm,
                y,
                _("This document replaces No. %(number)s.", number=document.replaces.reference),
            )

        y -= 14 * mm
        canvas.setFont(GOTHIC, 14)
        recipient = document.recipient_company or document.recipient_name
        if document.recipient_company and document.recipient_name:
            recipient = f"{document.recipient_company} {document.recipient_name}"
        # Translators: the addressee of a receipt or invoice; Japanese adds the honorific 様.
        canvas.drawString(20 * mm, y, _("%(recipient)s", recipient=recipient))
        canvas.line(20 * mm, y - 2 * mm, 120 * mm, y - 2 * mm)
        if document.recipient_address:
            y -= 7 * mm
            canvas.setFont(GOTHIC, 9)
            canvas.drawString(20 * mm, y, document.recipient_address[:90])

        y -= 16 * mm
        canvas.setFont(GOTHIC, 18)
        total = format_money(document.total_minor, document.currency, lang)
        label = _("Amount received") if document.kind == DocumentKind.receipt else _("Amount due")
        canvas.drawString(20 * mm, y, f"{label}  {total}")
        canvas.setFont(GOTHIC, 10)
        y -= 7 * mm
        if document.tax_rate:
            canvas.drawString(
                20 * mm,
                y,
                _(
                    "(including consumption tax %(rate)s%%: %(tax)s)",
                    rate=document.tax_rate,
                    tax=format_money(document.tax_minor, document.currency, lang),
                ),
            )
            y -= 6 * mm
        if document.purpose:
            canvas.drawString(20 * mm, y, _("For: %(purpose)s", purpose=document.purpose)[:100])
            y -= 6 * mm
        if document.kind == DocumentKind.receipt and document.paid_at:
            canvas.drawString(
                20 * mm,
                y,
                _("Paid on %(date)s", date=format_short_date(document.paid_at, tz, lang)),
            )
            y -= 6 * mm
        if document.kind == DocumentKind.invoice and document.due_date:
            canvas.drawString(
                20 * mm,
                y,
                _("Payment due by %(date)s", date=format_short_date(document.due_date, tz, lang)),
            )
            y -= 6 * mm

        y -= 6 * mm
        canvas.setFont(GOTHIC, 10)
        canvas.drawString(20 * mm, y, _("Details"))
        canvas.line(20 * mm, y - 2 * mm, width - 20 * mm, y - 2 * mm)
        for line in document.lines:
            y -= 7 * mm
            canvas.drawString(22 * mm, y, str(line["label"])[:70])
            canvas.drawRightString(
                width - 22 * mm, y, format_money(int(line["amount_minor"]), document.currency, lang)
            )
        y -= 4 * mm
        canvas.line(20 * mm, y, width - 20 * mm, y)

        y -= 18 * mm
        canvas.setFont(GOTHIC, 10)
        name = issuer.get("name") if lang == "ja" else issuer.get("name_en")
        address = issuer.get("address") if lang == "ja" else issuer.get("address_en")
        x = width - 95 * mm
        canvas.drawString(x, y, _("Issuer"))
        for text in (
            name,
            address,
            _("Registration number: %(number)s", number=issuer.get("registration_number"))
            if issuer.get("registration_number")
            else "",
            _("Bank account: %(account)s", account=issuer.get("bank_account"))
            if document.kind == DocumentKind.invoice and issuer.get("bank_account")
            else "",
        ):
            if text:
                y -= 6 * mm
                canvas.drawString(x, y, str(text)[:60])
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def local_date(document: Document):
    return document.issued_at.astimezone(ZoneInfo(document.series.timezone)).date()


def pdf_attachment(document: Document) -> tuple[str, str, bytes]:
    """The document as an email attachment: (file name, content type, PDF bytes)."""
    return (f"{document.reference}.pdf", "application/pdf", render_pdf(document))
