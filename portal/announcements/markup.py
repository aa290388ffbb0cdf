"""Announcement texts: Markdown rendered to sanitised HTML (``portal/markup.py``, shared with
the abstracts' text; announcements may also use headings and tables), and plain text for the
text part of the email."""

from __future__ import annotations

import html as html_lib

from markupsafe import Markup

from portal.markup import sanitised_html

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "h1", "h2", "h3", "h4", "a", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def render_markdown(text: str | None) -> Markup:
    """Markdown to HTML, sanitised: no scripts, styles or raw HTML beyond simple tags."""
    return sanitised_html(text, ALLOWED_TAGS, ("sane_lists", "tables"))


def plain_text(text: str | None) -> str:
    """The Markdown source with any raw HTML tags removed (Markdown reads well as text)."""
    import nh3  # on first use, as in portal/markup.py

    return html_lib.unescape(nh3.clean(text or "", tags=set())).strip()
