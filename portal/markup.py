"""User-written Markdown (abstracts, announcements) as sanitised HTML: one copy of the rules.

The caller names the tags its text may use; links keep only ``href`` and ``title``, only
http(s) and mailto addresses, and get ``rel="nofollow noopener noreferrer"``. No scripts,
styles or raw HTML beyond those tags survive (nh3, the Rust ``ammonia`` sanitiser).
"""

from __future__ import annotations

from markupsafe import Markup


def sanitised_html(
    text: str | None, tags: set[str], extensions: tuple[str, ...] = ("sane_lists",)
) -> Markup:
    # Markdown and nh3 load with the first text rendered (about 3 MB that a worker serving
    # only event pages never needs).
    import markdown as markdown_lib
    import nh3

    html = markdown_lib.markdown(text or "", extensions=list(extensions))
    clean = nh3.clean(
        html,
        tags=tags,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return Markup(clean)
