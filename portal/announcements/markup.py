"""Announcement texts: Markdown rendered to sanitised HTML (the rules of the abstracts' text,
``plugins/abstracts/markup.py``, which the core may not import), and plain text for the
text part of the email."""

from __future__ import annotations

import html as html_lib

import markdown as markdown_lib
import nh3
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "h1", "h2", "h3", "h4", "a", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def render_markdown(text: str | None) -> Markup:
    """Markdown to HTML, sanitised: no scripts, styles or raw HTML beyond simple tags."""
    html = markdown_lib.markdown(text or "", extensions=["sane_lists", "tables"])
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return Markup(clean)


def plain_text(text: str | None) -> str:
    """The Markdown source with any raw HTML tags removed (Markdown reads well as text)."""
    return html_lib.unescape(nh3.clean(text or "", tags=set())).strip()
