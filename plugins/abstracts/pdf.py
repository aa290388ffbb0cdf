"""The book of abstracts (要旨集) as a PDF: accepted abstracts only, grouped as on the page.

Like ``portal.documents.pdf`` it uses reportlab's built-in Japanese CID fonts (no font files);
the layout is reportlab's platypus. The Markdown of each abstract is rendered and sanitised
as on the page, then reduced to what a PDF paragraph can show (paragraphs, lists, bold,
italic, super- and subscripts); everything else becomes plain text.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser
from io import BytesIO

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer

from plugins.abstracts import services
from portal.documents.pdf import register_fonts
from portal.i18n import format_date

GOTHIC, MINCHO = "IPAexGothic", "IPAexMincho"


def _fonts() -> None:
    register_fonts()


def _style(name: str, font: str = GOTHIC, size: float = 10, **kw) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.5, **kw)


class _Blocks(HTMLParser):
    """Sanitised HTML → paragraphs of reportlab's inline markup."""

    INLINE = {"strong": "b", "b": "b", "em": "i", "i": "i", "sup": "super", "sub": "sub"}
    BLOCKS = {"p", "li", "h3", "h4", "h5", "blockquote", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.lists: list[list] = []  # [kind, counter]

    def _flush(self) -> None:
        text = "".join(self.current).strip()
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in ("ul", "ol"):
            self._flush()
            self.lists.append([tag, 0])
        elif tag == "li":
            self._flush()
            if self.lists:
                self.lists[-1][1] += 1
                kind, number = self.lists[-1]
                self.current.append("• " if kind == "ul" else f"{number}. ")
        elif tag in self.BLOCKS:
            self._flush()
        elif tag == "br":
            self.current.append("<br/>")
        elif tag in self.INLINE:
            self.current.append(f"<{self.INLINE[tag]}>")

    def handle_endtag(self, tag):
        if tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag in self.BLOCKS:
            self._flush()
        elif tag in self.INLINE:
            self.current.append(f"</{self.INLINE[tag]}>")

    def handle_data(self, data):
        self.current.append(escape(data, quote=False))

    def close(self):
        super().close()
        self._flush()


def markdown_blocks(text: str) -> list[str]:
    parser = _Blocks()
    parser.feed(str(services.render_markdown(text)))
    parser.close()
    return parser.blocks


def _has_cjk(text: str) -> bool:
    return bool(services.CJK.search(text or ""))


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    if _has_cjk(text):
        style = ParagraphStyle(f"{style.name}-cjk", parent=style, wordWrap="CJK")
    return Paragraph(text, style)


def render_book(event, groups, lang: str) -> bytes:
    """The book as A4 pages: a cover line, then each group with its abstracts."""
    _fonts()
    settings = services.call_settings(event)
    buffer = BytesIO()
    styles = {
        "cover": _style("cover", MINCHO, 20, spaceAfter=6 * mm),
        "meta": _style("meta", GOTHIC, 10, spaceAfter=10 * mm),
        "group": _style("group", GOTHIC, 15, spaceBefore=4 * mm, spaceAfter=4 * mm),
        "title": _style("title", GOTHIC, 12.5, spaceBefore=6 * mm, spaceAfter=2 * mm),
        "authors": _style("authors", GOTHIC, 9.5),
        "affiliations": _style("affiliations", GOTHIC, 8.5, textColor="#444444", spaceAfter=2 * mm),
        "meta-small": _style("meta-small", GOTHIC, 8.5, textColor="#444444", spaceAfter=2 * mm),
        "body": _style("body", MINCHO, 9.5, spaceAfter=1.5 * mm),
    }
    with force_locale(lang):
        event_title = event.title.get(lang, event.series.default_language)
        book_title = _("Book of abstracts")
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=20 * mm,
            rightMargin=20 * mm,
            topMargin=20 * mm,
            bottomMargin=20 * mm,
            title=f"{event_title} · {book_title}",
        )
        story: list = [
            _para(escape(event_title), styles["cover"]),
            _para(
                escape(f"{book_title} · {format_date(event.starts_at, event.timezone, lang)}"),
                styles["meta"],
            ),
        ]
        if not groups:
            story.append(_para(escape(_("No abstracts have been accepted yet.")), styles["body"]))
        for index, (label, abstracts) in enumerate(groups):
            if index:
                story.append(PageBreak())
            story.append(_para(escape(str(label)), styles["group"]))
            for abstract in abstracts:
                authors, affiliations = services.author_affiliations(abstract)
                names = []
                for author, marks in authors:
                    name = escape(author.name or "—")
                    if author.presenting:
                        name = f"<u>{name}</u>"
                    if marks:
                        name += "<super>" + ",".join(str(m) for m in marks) + "</super>"
                    names.append(name)
                head = [
                    _para(escape(abstract.title.get(lang, abstract.language)), styles["title"]),
                    _para(", ".join(names), styles["authors"]),
                ]
                if affiliations:
                    head.append(
                        _para(
                            "<br/>".join(
                                f"<super>{i}</super> {escape(a)}"
                                for i, a in enumerate(affiliations, start=1)
                            ),
                            styles["affiliations"],
                        )
                    )
                kind = services.STATE_LABELS[abstract.state]
                topic = settings.topic_label(abstract.topic, lang) if abstract.topic else ""
                head.append(
                    _para(
                        escape(" · ".join(str(p) for p in (kind, topic) if p)), styles["meta-small"]
                    )
                )
                story.append(KeepTogether(head))
                for block in markdown_blocks(abstract.body.get(lang, abstract.language)):
                    story.append(_para(block, styles["body"]))
                story.append(Spacer(1, 4 * mm))
        doc.build(story)
    return buffer.getvalue()
