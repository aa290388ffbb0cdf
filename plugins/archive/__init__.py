"""archive: the member-only lecture archive (講演資料アーカイブ, 会員限定).

Per talk: files (PDF slides, PowerPoint .pptx, PNG and JPEG images; checked by content and
size, setting ``max_file_mb``, default 50) and video links, added by the talk's speaker or an
organiser. Who sees them is written down in ``plugins/archive/services.py``: administrators,
the series' organisers, the speaker for their own talks, and members of the series in the
current fiscal year (the app-wide ``member_status`` hook). Everyone else sees that material
exists and how to get access. Every file or link request goes through a checked view
(``Cache-Control: private, no-store``) and is logged; organisers read the log.

Pages: ``/<lang>/series/<slug>/archive/`` (by meeting, year, speaker, and search of titles,
speakers and the text of the slides), ``/<lang>/events/<slug>/archive/`` (an event's material
and upload forms), ``/<lang>/series/<slug>/archive/log`` (organisers).

Hooks: ``talk_links`` (the talk's material the user may open), ``event_tabs`` (a link to the
event's archive page when there is material or the user may upload), ``event_sections`` (the
material on the page of a past event), ``dashboard_panels`` (counts for organisers),
``personal_data`` and ``forget_person`` (the person's log rows and uploads).
"""

from __future__ import annotations

from flask import has_request_context, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.plugins import Tab

name = "archive"
scope = "series"  # switched on for a whole series, on its organiser page (portal.plugins)
label = _l("Lecture archive")
description = _l(
    "Slides, files and video links per talk, open to members of the series, its speakers and "
    "organisers; every request is logged."
)
default_settings: dict = {"max_file_mb": 50}


def _event_items(event) -> dict:
    """The items of the event's talks, loaded once per request (talk_links runs per talk)."""
    from plugins.archive import services
    from portal.db import db

    cache = request.environ.setdefault("portal.archive.items", {}) if has_request_context() else {}
    if event.id not in cache:
        cache[event.id] = services.items_by_talk(db.session, [t.id for t in event.talks])
    return cache[event.id]


def _access(user, series):
    from plugins.archive import services

    cache = request.environ.setdefault("portal.archive.access", {}) if has_request_context() else {}
    key = (
        getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None,
        series.id,
    )
    if key not in cache:
        cache[key] = services.access(user, series)
    return cache[key]


@hookimpl
def blueprints():
    from plugins.archive.views import bp

    return [bp]


@hookimpl
def talk_links(talk, user):
    from plugins.archive.views import type_label

    event = talk.event
    items = _event_items(event).get(talk.id) or []
    if not items or not _access(user, event.series).sees(talk):
        return []
    return [
        Tab(
            label=f"{item.label()} ({type_label(item)})",
            url=url_for("archive.open_item", item_id=item.id),
            plugin=name,
        )
        for item in items
    ]


@hookimpl
def event_tabs(event, user):
    from plugins.archive import services

    items = _event_items(event)
    has_material = any(items.values())
    may_upload = any(services.can_upload(user, t, event.series) for t in event.talks)
    if not has_material and not may_upload:
        return []
    return [
        Tab(
            label=str(_l("Lecture archive")),
            url=url_for("archive.event_archive", slug=event.slug),
            plugin=name,
        )
    ]


@hookimpl
def event_sections(event, user):
    items = _event_items(event)
    if not event.is_past or not any(items.values()):
        return []
    talks = [t for t in event.talks if items.get(t.id)]
    html = render_template(
        "archive/_section.html",
        event=event,
        series=event.series,
        talks=talks,
        items=items,
        access=_access(user, event.series),
    )
    return [Markup(html)]


@hookimpl
def dashboard_panels(event, user):
    if not getattr(user, "is_authenticated", False) or not user.is_organiser_of(event.series):
        return []
    items = _event_items(event)
    count = sum(len(v) for v in items.values())
    html = render_template("archive/_panel.html", event=event, series=event.series, count=count)
    return [Markup(html)]


@hookimpl
def personal_data(person):
    from plugins.archive import services
    from portal.db import db

    return services.personal_data(db.session, person)


@hookimpl
def forget_person(person):
    from plugins.archive import services
    from portal.db import db

    services.forget_person(db.session, person)
