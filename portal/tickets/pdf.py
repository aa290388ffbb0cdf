"""The ticket (参加証) as a one-page PDF, QR codes, and name badges (名札) on label sheets.

Both embed the IPAex fonts shipped in ``portal/documents/fonts`` (``register_fonts``), so
Japanese names print on any machine. QR codes are drawn as vector squares from segno's
matrix (error correction M, never a Micro QR, which phone decoders do not read).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO

import segno
from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from portal.documents.pdf import register_fonts
from portal.i18n import format_date, format_person_name, format_time


@lru_cache(maxsize=256)
def qr(token: str) -> segno.QRCode:
    # Encoding (choosing the best mask) is the costly part and one confirmation email needs
    # the same code three times (the HTML, the PNG and the PDF): encoded once per token.
    return segno.make(token, error="m", micro=False)


def qr_svg(token: str, scale: int = 6) -> str:
    """An inline <svg> element (no script, no data: URI, so a strict CSP allows it)."""
    return qr(token).svg_inline(scale=scale, border=4, title=None)


def qr_png(token: str, scale: int = 8) -> bytes:
    buffer = BytesIO()
    qr(token).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def draw_qr(canvas: Canvas, token: str, x: float, y: float, size: float) -> None:
    """Draw the QR code with its lower-left corner at (x, y), ``size`` wide (quiet zone
    included)."""
    matrix = [list(row) for row in qr(token).matrix]
    n = len(matrix) + 8  # four modules of quiet zone on each side
    cell = size / n
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    # One path of horizontal runs of dark modules: a third of the squares, one fill.
    path = canvas.beginPath()
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            path.rect(x + (start + 4) * cell, y + size - (r + 5) * cell, (c - start) * cell, cell)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def fit_size(text: str, font: str, largest: float, width: float, smallest: float = 5) -> float:
    """The largest font size (≤ ``largest``) at which ``text`` fits in ``width``: names are
    shrunk, never cut."""
    size = largest
    while size > smallest and stringWidth(text, font, size) > width:
        size -= 0.5
    if stringWidth(text, font, size) > width:
        size = max(1.0, size * width / stringWidth(text, font, size))
    return size


def _fitted(
    canvas: Canvas,
    text: str,
    font: str,
    largest: float,
    x: float,
    y: float,
    width: float,
    centred: bool = False,
) -> float:
    size = fit_size(text, font, largest, width)
    canvas.setFont(font, size)
    if centred:
        canvas.drawCentredString(x + width / 2, y, text)
    else:
        canvas.drawString(x, y, text)
    return size


# -- the ticket ------------------------------------------------------------------------------


def ticket_pdf(registration, token: str, language: str, reception: bool | None = None) -> bytes:
    """One A4 page: name, event, date and time, venue, attendance mode, exchange meeting
    yes/no (when the event has one) and the QR code, in ``language``."""
    from portal.registration.services import MODE_LABELS

    gothic, _mincho = register_fonts()
    event = registration.event
    person = registration.person
    tz = event.timezone
    buffer = BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    width, height = A4
    left = 25 * mm
    usable = width - 50 * mm
    with force_locale(language):
        title = event.title.get(language, event.series.default_language)
        canvas.setTitle(f"{_('Ticket')} · {title}")
        y = height - 30 * mm
        canvas.setFont(gothic, 24)  # one embedded font: a smaller, faster PDF
        canvas.drawCentredString(width / 2, y, _("Ticket"))
        y -= 18 * mm
        _fitted(canvas, format_person_name(person, language), gothic, 26, left, y, usable, True)
        if person.affiliation:
            y -= 9 * mm
            _fitted(canvas, person.affiliation, gothic, 12, left, y, usable, True)
        y -= 16 * mm
        _fitted(canvas, title, gothic, 16, left, y, usable, True)
        rows = [
            (
                _("Date"),
                f"{format_date(event.starts_at, tz, language)} "
                f"{format_time(event.starts_at, tz, language)}–{format_time(event.ends_at, tz, language)}",
            ),
            (_("Venue"), event.venue.get(language, event.series.default_language)),
            (_("Attendance"), str(MODE_LABELS[registration.attendance_mode])),
        ]
        if reception is not None:
            rows.append((_("Exchange meeting"), _("Yes") if reception else _("No")))
        y -= 6 * mm
        for label, value in rows:
            y -= 9 * mm
            canvas.setFont(gothic, 10)
            canvas.drawString(left, y, label)
            _fitted(canvas, value or "—", gothic, 12, left + 35 * mm, y, usable - 35 * mm)
        size = 70 * mm
        y -= size + 12 * mm
        draw_qr(canvas, token, (width - size) / 2, y, size)
        y -= 8 * mm
        canvas.setFont(gothic, 9)
        canvas.drawCentredString(
            width / 2, y, _("Show this code at the reception. Do not share it.")
        )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# -- name badges -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelLayout:
    """A label sheet: columns × rows of width × height mm, with the sheet's margins."""

    code: str
    name: str
    columns: int
    rows: int
    width: float
    height: float
    left: float
    top: float
    gap_x: float = 0
    gap_y: float = 0

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows


LAYOUTS = {
    layout.code: layout
    for layout in (
        # A-ONE 51002 and similar: business-card size, 10 per A4 sheet.
        LabelLayout("a4-10", "A4 2×5 · 91×55 mm", 2, 5, 91, 55, 14, 11),
        # Name-holder inserts (90×60 mm), 8 per sheet.
        LabelLayout("a4-8", "A4 2×4 · 90×60 mm", 2, 4, 90, 60, 15, 28.5),
        # Large badges (100×70 mm), 6 per sheet.
        LabelLayout("a4-6", "A4 2×3 · 100×70 mm", 2, 3, 100, 70, 5, 43.5),
    )
}
DEFAULT_LAYOUT = "a4-10"


@dataclass
class Badge:
    language: str
    large: str
    small: str
    affiliation: str
    role: str
    token: str | None = None


def badge_for(person, role_label: str, language: str, token: str | None) -> Badge:
    """Japanese: family name large, given name below; English: given name first, as in the
    romanised name (``Taro Yamada``); a name in Latin letters only is printed as given."""
    native_family = (person.family_name or "").strip()
    native_given = (person.given_name or "").strip()
    romanized = (person.romanized_name or "").strip()
    if language == "ja" and native_family:
        large, small = native_family, native_given
    else:
        large = romanized or " ".join(p for p in (native_given, native_family) if p)
        small = ""
    return Badge(language, large, small, person.affiliation or "", role_label, token)


def badges_pdf(badges: list[Badge], layout_code: str = DEFAULT_LAYOUT, title: str = "") -> bytes:
    gothic, _mincho = register_fonts()
    layout = LAYOUTS.get(layout_code) or LAYOUTS[DEFAULT_LAYOUT]
    buffer = BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    canvas.setTitle(title or "Badges")
    _w, height = A4
    if not badges:
        canvas.showPage()
    for index, badge in enumerate(badges):
        slot = index % layout.per_sheet
        if slot == 0 and index:
            canvas.showPage()
        col, row = slot % layout.columns, slot // layout.columns
        x = (layout.left + col * (layout.width + layout.gap_x)) * mm
        top = height - (layout.top + row * (layout.height + layout.gap_y)) * mm
        _draw_badge(canvas, badge, x, top, layout.width * mm, layout.height * mm, gothic)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _two_lines(text: str) -> list[str]:
    """Split at the space nearest the middle (long affiliations), else keep one line."""
    spaces = [i for i, ch in enumerate(text) if ch in " \u3000"]
    if not spaces:
        return [text]
    middle = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return [text[:middle].strip(), text[middle + 1 :].strip()]


def _draw_badge(canvas: Canvas, badge: Badge, x, top, w, h, font) -> None:
    canvas.setStrokeColorRGB(0.8, 0.8, 0.8)
    canvas.setLineWidth(0.3)
    canvas.rect(x, top - h, w, h, stroke=1, fill=0)
    pad = 4 * mm
    qr_size = min(h * 0.42, 24 * mm) if badge.token else 0
    full_w = w - 2 * pad
    text_w = full_w - (qr_size + 2 * mm if qr_size else 0)
    y = top - pad
    # The name: as large as the badge allows, shrunk to the width, never cut.
    large = fit_size(badge.large, font, h * (0.30 if badge.small else 0.24), full_w)
    y -= large * 0.92
    canvas.setFont(font, large)
    canvas.drawString(x + pad, y, badge.large)
    if badge.small:
        small = fit_size(badge.small, font, h * 0.15, full_w)
        y -= small * 1.15
        canvas.setFont(font, small)
        canvas.drawString(x + pad, y, badge.small)
    if badge.affiliation:
        size = fit_size(badge.affiliation, font, 11, text_w)
        lines = [badge.affiliation]
        if size < 8:
            lines = _two_lines(badge.affiliation)
            size = min(fit_size(line, font, 11, text_w) for line in lines)
        y -= size * 1.5 + (0 if badge.small else large * 0.2)
        canvas.setFont(font, size)
        for line in lines:
            canvas.drawString(x + pad, y, line)
            y -= size * 1.2
    if badge.role:
        canvas.setFillColorRGB(0.15, 0.15, 0.15)
        _fitted(canvas, badge.role, font, 9, x + pad, top - h + pad, text_w)
        canvas.setFillColorRGB(0, 0, 0)
    if badge.token:
        draw_qr(canvas, badge.token, x + w - pad - qr_size, top - h + pad * 0.5, qr_size)
