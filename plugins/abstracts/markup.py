"""The text of an abstract: Markdown rendered to safe HTML, plain text, and the word count
(Japanese counted by character).
"""

from __future__ import annotations

import math
import re
import unicodedata

from markupsafe import Markup

from portal.markup import sanitised_html

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "sup", "sub", "h3", "h4", "h5", "a", "hr",
}  # fmt: skip


CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u31f0-\u31ff]"
)


def render_markdown(text: str | None) -> Markup:
    """Markdown to HTML, sanitised: no scripts, no styles, no raw HTML beyond simple tags."""
    return sanitised_html(text, ALLOWED_TAGS)


def plain_text(text: str | None) -> str:
    """The text a reader sees, without Markdown or tags."""
    import html as html_lib

    import markdown as markdown_lib  # on first use, as in portal/markup.py
    import nh3

    html = markdown_lib.markdown(text or "")
    return html_lib.unescape(nh3.clean(html, tags=set()))


def word_count(text: str | None) -> int:
    """Latin-script words by spaces; CJK text (no spaces) counts two characters as a word."""
    plain = unicodedata.normalize("NFKC", plain_text(text))
    cjk = len(CJK.findall(plain))
    rest = CJK.sub(" ", plain)
    words = sum(1 for token in rest.split() if any(ch.isalnum() for ch in token))
    return words + math.ceil(cjk / 2)
