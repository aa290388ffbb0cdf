"""The layout of receipts (領収書), invoices (請求書) and their corrections (``portal.documents.pdf``
is the entry point; this module loads reportlab, so it is imported on first use only).

Every PDF embeds (as a subset) the IPAex fonts shipped in ``portal/documents/fonts`` (IPA Font
License, ``LICENSE-IPA.txt``) for all its text, English and ¥ included, so it renders the same
in any viewer with no font installed, and ``pdftotext`` reads it.

The layout is reportlab's Platypus: paragraphs and tables that wrap, so any name, address,
fee label or number of lines fits; a long document flows onto a second page, where the item
table's header is repeated and every page carries the document's number and "page n of m".

What a qualified invoice (適格請求書) needs is printed: 請求書番号 / 領収書番号, the issuer with its
registration number (T + 13 digits), the date of issue, the addressee (宛名: a company with 御中,
a person with 様), the items, the amount per tax rate with the tax it includes, the total; a
receipt adds its 但し書き and the date paid; an invoice its due date and the bank account with
the account holder (口座名義). English documents (overseas payers) show US$ / USD unambiguously
and the bank details for an international transfer (SWIFT/BIC, account holder, bank address).
"""

from __future__ import annotations

from io import BytesIO
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from portal.documents.models import Document, DocumentKind
from portal.documents.pdf import register_fonts
from portal.i18n import format_money, format_short_date, from_minor, minor_units

GOTHIC, MINCHO = register_fonts()
WIDTH, HEIGHT = A4
_GOTHIC = [("FONTNAME", (0, 0), (-1, -1), GOTHIC)]
MARGIN = 18 * mm
BODY = WIDTH - 2 * MARGIN
GRID = colors.HexColor("#8a94a0")
SHADE = colors.HexColor("#eef1f5")


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=GOTHIC, fontSize=9.5, leading=14)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=12),
        "title": ParagraphStyle(
            "title", parent=base, fontName=MINCHO, fontSize=22, leading=28, alignment=TA_CENTER
        ),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "addressee": ParagraphStyle("addressee", parent=base, fontSize=14, leading=20),
        "total": ParagraphStyle("total", parent=base, fontSize=16, leading=22),
        "head": ParagraphStyle("head", parent=base, fontSize=9, leading=12),
        "amount": ParagraphStyle("amount", parent=base, alignment=TA_RIGHT),
    }


def _cjk(text: str) -> bool:
    return any(ord(c) >= 0x3000 for c in text)


def _p(text, style) -> Paragraph:
    """A paragraph of plain text (escaped; newlines kept). Text with Japanese script wraps
    anywhere (no spaces between words); other text wraps between words, and a word longer
    than the column is broken rather than left running off the page."""
    text = str(text or "")
    if _cjk(text):
        style = ParagraphStyle(f"{style.name}-cjk", parent=style, wordWrap="CJK")
    else:
        style = ParagraphStyle(
            f"{style.name}-split", parent=style, splitLongWords=True, uriWasteReduce=0.3
        )
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def money(amount_minor: int, currency: str, lang: str) -> str:
    """Amounts as printed: ¥8,000 for yen; US$250.00 for dollars (never a bare $), other
    currencies with their ISO code."""
    code = currency.upper()
    if code == "JPY":
        return format_money(amount_minor, code, lang)
    if code == "USD":
        value = from_minor(amount_minor, code)
        sign = "-" if value < 0 else ""
        return f"{sign}US${abs(value):,.{minor_units(code)}f}"
    return f"{format_money(amount_minor, code, lang)} ({code})"


def _title(document: Document) -> str:
    if document.is_cancellation:
        return _("Cancellation") if document.kind == DocumentKind.receipt else _("Credit note")
    return _("Receipt") if document.kind == DocumentKind.receipt else _("Invoice")


def _number_label(document: Document) -> str:
    if document.kind == DocumentKind.receipt:
        return _("Receipt number")
    return _("Invoice number")


ADDRESSEE_WIDTH = BODY - 82 * mm


def _last_line_width(text: str, style: ParagraphStyle, width: float) -> float:
    """The width of the last line once ``text`` is wrapped character by character (as
    Japanese text wraps) into lines of ``width``."""
    last = 0.0
    for line in text.split("\n"):
        last = 0.0
        for char in line:
            size = pdfmetrics.stringWidth(char, style.fontName, style.fontSize)
            last = size if last + size > width else last + size
    return last


def _addressee(document: Document, lang: str, s: dict) -> Paragraph:
    """宛名: a company alone takes 御中; a person (with their company above) takes 様. A long
    name wraps; the honorific follows it on the same line, or starts the next line whole
    when it would not fit, so it is never cut or split."""
    company = (document.recipient_company or "").strip()
    name = (document.recipient_name or "").strip()
    style = s["addressee"]
    if lang != "ja":
        return _p("\n".join(part for part in (company, name) if part), style)
    if name:
        text, honorific = (f"{company}\n{name}" if company else name), "様"
    elif company:
        text, honorific = company, "御中"
    else:
        return _p("", style)
    width = ADDRESSEE_WIDTH - 6  # the cell's right padding
    room = width - _last_line_width(text, style, width)
    needed = pdfmetrics.stringWidth(f" {honorific}", style.fontName, style.fontSize)
    # One character to spare: the line breaking rules may move a character down.
    spare = style.fontSize
    return _p(f"{text} {honorific}" if room >= needed + spare else f"{text}\n{honorific}", style)


def _tax_rows(document: Document, lang: str) -> list[list[str]]:
    from portal.documents.services import tax_summary

    rows = []
    for rate, amount, tax in tax_summary(document.lines, document.tax_rate):
        currency = document.currency
        if rate:
            rows.append(
                [
                    _("Subject to %(rate)s%% tax", rate=rate),
                    money(amount, currency, lang),
                    _("tax included: %(tax)s", tax=money(tax, currency, lang)),
                ]
            )
        else:
            rows.append([_("Not subject to consumption tax"), money(amount, currency, lang), ""])
    return rows


def _bank_rows(issuer: dict, lang: str) -> list[list[str]]:
    if lang == "ja":
        rows = [
            [_("Bank account"), issuer.get("bank_account", "")],
            [_("Account holder"), issuer.get("bank_account_holder", "")],
        ]
    else:
        rows = [
            [_("Bank"), issuer.get("bank_name_en") or issuer.get("bank_account", "")],
            [_("SWIFT/BIC"), issuer.get("bank_swift", "")],
            [_("Account number"), issuer.get("bank_account_en") or issuer.get("bank_account", "")],
            [
                _("Account holder"),
                issuer.get("bank_account_holder_en") or issuer.get("bank_account_holder", ""),
            ],
            [_("Bank address"), issuer.get("bank_address_en", "")],
        ]
    return [row for row in rows if row[1]]


def _story(document: Document, lang: str, s: dict) -> list:
    tz = document.series.timezone
    issuer = document.issuer or {}
    receipt = document.kind == DocumentKind.receipt
    story: list = [_p(_title(document), s["title"]), Spacer(0, 4 * mm)]

    facts = [
        [_p(_number_label(document), s["right"]), _p(document.reference, s["right"])],
        [
            _p(_("Date of issue"), s["right"]),
            _p(format_short_date(document.issued_at, tz, lang), s["right"]),
        ],
    ]
    if document.replaces is not None:
        facts.append(
            [
                _p(_("Replaces"), s["right"]),
                _p(document.replaces.reference, s["right"]),
            ]
        )
    head = Table(
        [
            [
                [
                    _addressee(document, lang, s),
                    _p(document.recipient_address, s["small"]),
                ],
                Table(facts, colWidths=[34 * mm, 46 * mm], style=_GOTHIC),
            ]
        ],
        colWidths=[ADDRESSEE_WIDTH, 82 * mm],
    )
    head.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), GOTHIC),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (0, 0), 0.8, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    story += [head, Spacer(0, 7 * mm)]

    label = _("Amount received") if receipt else _("Amount due")
    total = Table(
        [
            [
                _p(label, s["total"]),
                _p(money(document.total_minor, document.currency, lang), s["total"]),
            ]
        ],
        colWidths=[60 * mm, BODY - 60 * mm],
    )
    total.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), GOTHIC),
                ("BOX", (0, 0), (-1, -1), 1, colors.black),
                ("BACKGROUND", (0, 0), (0, 0), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [total, Spacer(0, 2 * mm)]
    notes = [
        _(
            "All amounts in %(currency)s, consumption tax included.",
            currency=document.currency.upper(),
        )
    ]
    if receipt and document.purpose:
        # 但し書き: on receipts only.
        notes.append(_("For %(purpose)s", purpose=document.purpose))
    if receipt and document.paid_at:
        notes.append(_("Paid on %(date)s", date=format_short_date(document.paid_at, tz, lang)))
        if not document.is_cancellation:
            notes.append(_("Received with thanks."))
    if not receipt and document.purpose:
        notes.append(_("Subject: %(purpose)s", purpose=document.purpose))
    if not receipt and document.due_date:
        notes.append(
            _("Payment due by %(date)s", date=format_short_date(document.due_date, tz, lang))
        )
    story += [_p(note, s["base"]) for note in notes]
    story.append(Spacer(0, 6 * mm))

    rows = [[_p(_("Item"), s["head"]), _p(_("Tax rate"), s["head"]), _p(_("Amount"), s["head"])]]
    for line in document.lines:
        rate = int(line.get("tax_rate", document.tax_rate))
        rows.append(
            [
                _p(line["label"], s["base"]),
                _p(f"{rate}%", s["amount"]),
                _p(money(int(line["amount_minor"]), document.currency, lang), s["amount"]),
            ]
        )
    items = Table(rows, colWidths=[BODY - 55 * mm, 20 * mm, 35 * mm], repeatRows=1)
    items.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), GOTHIC),
                ("GRID", (0, 0), (-1, -1), 0.5, GRID),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [items, Spacer(0, 3 * mm)]

    summary = [
        [_p(a, s["base"]), _p(b, s["amount"]), _p(c, s["amount"])]
        for a, b, c in _tax_rows(document, lang)
    ]
    summary.append(
        [
            _p(_("Total"), s["base"]),
            _p(money(document.total_minor, document.currency, lang), s["amount"]),
            _p(
                _("tax included: %(tax)s", tax=money(document.tax_minor, document.currency, lang)),
                s["amount"],
            ),
        ]
    )
    taxes = Table(summary, colWidths=[BODY - 90 * mm, 35 * mm, 55 * mm])
    taxes.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), GOTHIC),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [KeepTogether(taxes), Spacer(0, 8 * mm)]

    name = issuer.get("name") if lang == "ja" else issuer.get("name_en")
    address = issuer.get("address") if lang == "ja" else issuer.get("address_en")
    block = [[_p(_("Issuer"), s["head"]), _p(name, s["base"])]]
    if address:
        block.append(["", _p(address, s["small"])])
    if issuer.get("registration_number"):
        block.append(
            [
                _p(_("Registration number"), s["head"]),
                _p(issuer["registration_number"], s["base"]),
            ]
        )
    if not receipt:
        heading = _("Bank account for payment")
        if lang != "ja":
            heading = _("Bank details for international transfers")
        bank = _bank_rows(issuer, lang)
        spans = []
        if bank:
            spans.append(("SPAN", (0, len(block)), (-1, len(block))))
            block.append([_p(heading, s["head"]), ""])
            block += [[_p(k, s["small"]), _p(v, s["base"])] for k, v in bank]
    issuer_table = Table(block, colWidths=[42 * mm, BODY - 42 * mm])
    issuer_table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), GOTHIC),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, 0), (-1, 0), 0.5, GRID),
                *(spans if not receipt else []),
            ]
        )
    )
    story.append(KeepTogether(issuer_table))
    return story


def build_pdf(document: Document, language: str | None = None) -> bytes:
    """The document as an A4 PDF (one page or more) in its own language.

    ``language`` renders the same stored document with the fixed labels (title, dates, issuer
    name and address) in another language; the stored content (recipient, purpose, lines,
    amounts, number) is printed as issued, so the document does not change.
    """
    lang = language or document.language
    buffer = BytesIO()
    with force_locale(lang):
        title = f"{_title(document)} {document.reference}"
        footer_label = f"{_number_label(document)} {document.reference}"
        styles = _styles()
        story = _story(document, lang, styles)

        def footer(canvas, doc):
            canvas.saveState()
            canvas.setFont(GOTHIC, 8)
            canvas.drawString(MARGIN, 10 * mm, footer_label)
            canvas.drawRightString(
                WIDTH - MARGIN, 10 * mm, _("Page %(page)s", page=canvas.getPageNumber())
            )
            canvas.restoreState()

        pdf = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=20 * mm,
            title=title,
            author=(document.issuer or {}).get("name_en") or "",
            lang=lang,
            initialFontName=GOTHIC,  # no Helvetica (not embedded) anywhere in the file
        )
        pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
