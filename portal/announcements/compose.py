"""An announcement as a recipient of one language reads it: placeholders filled from the
event, Markdown rendered (sanitised), the office's signature and the leave link added.

Placeholders (written in either language's text): ``{event_title}``, ``{event_date}``,
``{event_time}``, ``{venue}``, ``{fee_table}``, ``{registration_link}``, ``{event_link}``.
They are replaced literally (no format string: braces elsewhere stay as written).

``render(announcement, language)`` renders the parts every recipient of a language shares once;
``personalise`` only puts each recipient's links in (plain string replacement), so 2,500
messages cost one rendering per language.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from portal.announcements.markup import plain_text, render_markdown
from portal.announcements.models import Announcement
from portal.events.models import Event
from portal.i18n import format_date, format_money, format_time
from portal.links import external_url
from portal.mail.services import office_contact

PLACEHOLDERS = (
    "event_title",
    "event_date",
    "event_time",
    "venue",
    "fee_table",
    "registration_link",
    "event_link",
)
# Marks replaced per recipient (never typed by a person: they contain NUL-free odd brackets).
LEAVE_MARK = "\u27e6leave\u27e7"
VIEW_MARK = "\u27e6view\u27e7"


@dataclass
class Rendered:
    language: str
    subject: str
    text: str
    html: str


def _fee_table(session: Session, event: Event, lang: str) -> str:
    from portal.registration.models import FeeCategory

    fees = list(
        session.scalars(
            sa.select(FeeCategory)
            .where(FeeCategory.event_id == event.id, FeeCategory.is_active.is_(True))
            .order_by(FeeCategory.position, FeeCategory.id)
        )
    )
    if not fees:
        return ""
    currency = event.series.currency
    lines = [f"| {_('Fee category')} | {_('Price')} |", "| --- | ---: |"]
    for fee in fees:
        price = format_money(fee.price_minor, currency, lang) if fee.price_minor else _("Free")
        name = fee.name.get(lang, event.series.default_language).replace("|", "/")
        lines.append(f"| {name} | {price} |")
    return "\n".join(lines)


def placeholder_values(session: Session, event: Event | None, lang: str) -> dict[str, str]:
    if event is None:
        return dict.fromkeys(PLACEHOLDERS, "")
    default = event.series.default_language
    return {
        "event_title": event.title.get(lang, default),
        "event_date": format_date(event.starts_at, event.timezone, lang),
        "event_time": f"{format_time(event.starts_at, event.timezone, lang)}–"
        f"{format_time(event.ends_at, event.timezone, lang)}",
        "venue": event.venue.get(lang, default),
        "fee_table": _fee_table(session, event, lang),
        "registration_link": external_url("registration.register", lang_code=lang, slug=event.slug),
        "event_link": external_url("events.event_page", lang_code=lang, slug=event.slug),
    }


def fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def context(session: Session, announcement: Announcement, lang: str) -> dict:
    """What the templates ``mail/announcements/announcement.txt|html`` need, in ``lang``
    (falling back to the other language's text), the recipient's links left as marks. Call
    it under ``force_locale(lang)``."""
    series = announcement.series
    default = series.default_language
    values = placeholder_values(session, announcement.event, lang)
    subject = fill(announcement.subject.get(lang, default), values).replace("\n", " ").strip()
    body = fill(announcement.body.get(lang, default), values)
    return {
        "lang": lang,
        "series": series,
        "office": office_contact(lang),
        "leave_link": LEAVE_MARK,
        "view_link": VIEW_MARK,
        "subject": subject[:300],
        "plain_body": plain_text(body),
        "html_body": render_markdown(body),
    }


def render(session: Session, announcement: Announcement, lang: str) -> Rendered:
    """The announcement in ``lang``, rendered once for every recipient of that language."""
    with force_locale(lang):
        values = context(session, announcement, lang)
        text = render_template("mail/announcements/announcement.txt", **values)
        html = render_template("mail/announcements/announcement.html", **values)
    return Rendered(language=lang, subject=values["subject"], text=text, html=html)


def personalise(rendered: Rendered, leave_link: str, view_link: str) -> tuple[str, str]:
    """The text and HTML parts with one recipient's links."""
    text = rendered.text.replace(LEAVE_MARK, leave_link).replace(VIEW_MARK, view_link)
    html = rendered.html.replace(LEAVE_MARK, str(escape(leave_link))).replace(
        VIEW_MARK, str(escape(view_link))
    )
    return text, html


def web_body(session: Session, announcement: Announcement, lang: str) -> tuple[str, Markup]:
    """Subject and sanitised HTML body for the browser (the view link, the preview)."""
    default = announcement.series.default_language
    with force_locale(lang):
        values = placeholder_values(session, announcement.event, lang)
        subject = fill(announcement.subject.get(lang, default), values)
        body = render_markdown(fill(announcement.body.get(lang, default), values))
    return subject, body
