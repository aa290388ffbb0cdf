"""The printed programme: an A4 booklet in both languages (Japanese first, then English on the
same line or just below), with the embedded IPAex fonts."""

from __future__ import annotations

from io import BytesIO

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from portal.documents.pdf import register_fonts
from portal.i18n import format_date, format_person_name, format_time
from portal.tickets.pdf import fit_size

MARGIN = 20 * mm


class _Book:
    def __init__(self, title: str):
        self.gothic, self.mincho = register_fonts()
        self.buffer = BytesIO()
        self.canvas = Canvas(self.buffer, pagesize=A4)
        self.canvas.setTitle(title)
        self.width, self.height = A4
        self.page = 1
        self.y = self.height - MARGIN
        self.footer = title

    def new_page(self) -> None:
        self._footer()
        self.canvas.showPage()
        self.page += 1
        self.y = self.height - MARGIN

    def _footer(self) -> None:
        self.canvas.setFont(self.gothic, 8)
        self.canvas.setFillColorRGB(0.4, 0.4, 0.4)
        self.canvas.drawString(MARGIN, 12 * mm, self.footer[:80])
        self.canvas.drawRightString(self.width - MARGIN, 12 * mm, str(self.page))
        self.canvas.setFillColorRGB(0, 0, 0)

    def need(self, height: float) -> None:
        if self.y - height < 20 * mm:
            self.new_page()

    def line(
        self, text: str, size: float = 10, x: float = 0, font: str | None = None, gap: float = 1.45
    ) -> None:
        if not text:
            return
        font = font or self.gothic
        width = self.width - 2 * MARGIN - x
        size = fit_size(text, font, size, width, smallest=6) if len(text) < 90 else size
        self.need(size * gap)
        self.y -= size * gap
        self.canvas.setFont(font, size)
        if len(text) >= 90:  # a long line: wrap by width
            for chunk in _wrap(text, font, size, width):
                self.canvas.drawString(MARGIN + x, self.y, chunk)
                self.y -= size * gap
            self.y += size * gap
        else:
            self.canvas.drawString(MARGIN + x, self.y, text)

    def space(self, height: float) -> None:
        self.y -= height

    def finish(self) -> bytes:
        self._footer()
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, current = [], ""
    for ch in text:
        if stringWidth(current + ch, font, size) > width:
            lines.append(current)
            current = ch
        else:
            current += ch
    return [*lines, current] if current else lines


def _bi(message) -> tuple[str, str]:
    """A fixed label in Japanese and in English: ``message`` is a function calling gettext."""
    with force_locale("ja"):
        ja = str(message())
    with force_locale("en"):
        en = str(message())
    return ja, en


def _both(text, default: str) -> list[str]:
    """The Japanese and the English text, once when they are the same or one is missing."""
    ja, en = text.ja.strip(), text.en.strip()
    if ja and en and ja != en:
        return [ja, en]
    return [ja or en] if (ja or en) else []


def _speaker(person) -> str:
    ja = format_person_name(person, "ja")
    en = format_person_name(person, "en")
    name = ja if ja == en else f"{ja} / {en}"
    return f"{name}（{person.affiliation}）" if person.affiliation else name


def programme_pdf(table) -> bytes:
    """Cover (title, dates, venue in both languages), then each day: items with room and chair,
    talks with times, both titles and the speaker."""
    from portal.programme.services import KIND_LABELS

    event = table.event
    tz = event.timezone
    default = event.series.default_language
    book = _Book(f"{event.title.get('ja', default)} / {event.title.get('en', default)}")
    c = book.canvas
    # Cover.
    book.space(50 * mm)
    for text in _both(event.title, default):
        book.line(text, 22, font=book.mincho, gap=1.6)
    book.space(8 * mm)
    book.line(
        f"{format_date(event.starts_at, tz, 'ja')} / {format_date(event.starts_at, tz, 'en')}", 12
    )
    for text in _both(event.venue, default):
        book.line(text, 12)
    book.space(6 * mm)
    book.line(" / ".join(_bi(lambda: _("Programme"))), 16, font=book.mincho)
    for note in _bi(lambda: _("Times are in the event's time zone (%(zone)s).", zone=tz)):
        book.line(note, 9)
    if table.is_empty:
        book.space(6 * mm)
        for note in _bi(lambda: _("The programme will be announced soon.")):
            book.line(note, 11)
    room_label = " ".join(_bi(lambda: _("Room")))
    chair_label = " ".join(_bi(lambda: _("Chair")))
    poster_label = " / ".join(_bi(lambda: _("Poster presentation")))
    for day in table.days:
        book.new_page()
        first = day.entries[0].item.starts_at
        book.line(
            f"{format_date(first, tz, 'ja')} / {format_date(first, tz, 'en')}",
            15,
            font=book.mincho,
            gap=1.2,
        )
        c.setLineWidth(0.6)
        c.line(MARGIN, book.y - 2 * mm, book.width - MARGIN, book.y - 2 * mm)
        book.space(4 * mm)
        for entry in day.entries:
            item = entry.item
            book.need(20 * mm)
            book.space(3 * mm)
            when = f"{format_time(item.starts_at, tz, 'ja')}–{format_time(item.ends_at, tz, 'ja')}"
            titles = _both(item.title, default)
            if not titles:
                titles = [" / ".join(_bi(lambda item=item: KIND_LABELS[item.kind]))]
            book.line(f"{when}  {titles[0]}", 12)
            for text in titles[1:]:
                book.line(text, 11, x=24 * mm)
            details = []
            if item.room:
                details.append(f"{room_label}: {item.room}")
            if item.chair:
                details.append(f"{chair_label}: {_speaker(item.chair)}")
            for text in details:
                book.line(text, 9, x=24 * mm)
            for talk in entry.talks:
                book.need(16 * mm)
                book.space(1.5 * mm)
                start = talk.starts_at or item.starts_at
                end = talk.ends_at or item.ends_at
                talk_titles = _both(talk.title, talk.language) or ["—"]
                book.line(
                    f"{format_time(start, tz, 'ja')}–{format_time(end, tz, 'ja')}  {talk_titles[0]}",
                    10.5,
                    x=6 * mm,
                )
                for text in talk_titles[1:]:
                    book.line(text, 10, x=30 * mm)
                if talk.presentation_type == "poster":
                    book.line(poster_label, 9, x=30 * mm)
                if talk.speaker:
                    book.line(_speaker(talk.speaker), 9, x=30 * mm)
    return book.finish()
