"""Public pages: home, series, event."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user
from markupsafe import Markup

from portal.db import db
from portal.events import services
from portal.events.models import EventStatus
from portal.events.page import event_parts
from portal.i18n import current_language
from portal.pagecache import (
    cached_for_visitors,
    cached_fragment,
    csrf_secret_digest,
    depends_on,
    fresh_until,
)
from portal.pagination import page_number, paginate

bp = Blueprint("events", __name__, url_prefix="/<lang_code>")


@bp.get("/")
@cached_for_visitors
def home():
    series = services.all_series(db.session)
    events = services.upcoming_events(db.session, current_user)
    for event in events:
        fresh_until(event.ends_at)  # then it leaves the list
    return render_template("events/home.html", series=series, events=events)


@bp.get("/series/<slug>/")
@cached_for_visitors
def series_page(slug: str):
    series = services.series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    upcoming = services.upcoming_of_series(db.session, series, current_user)
    for event in upcoming:
        fresh_until(event.ends_at)  # then it moves to the past meetings
    past = paginate(
        db.session, services.series_events(series, current_user, upcoming=False), page_number(), 20
    )
    return render_template("events/series.html", series=series, upcoming=upcoming, past=past)


@bp.get("/events/<slug>/")
@cached_for_visitors(per_person=True)
def event_page(slug: str):
    """The event page. Visitors get it from the page cache; for a logged-in person its
    content (their tabs, registration box and plugin sections) is kept per person under the
    event's content versions, and only the frame (header, messages) is rendered each time."""
    if not current_user.is_authenticated:
        event_id, title, body = _event_content(slug)
    else:
        row = services.event_summary(db.session, slug)
        if row is None:
            abort(404)
        event_id = row.id
        if row.status == EventStatus.draft:  # organisers only: not kept
            _id, title, body = _event_content(slug)
        else:
            _id, title, body = cached_fragment(
                lambda: (
                    f"event:{row.id}:{current_language()}:{current_user.get_id()}"
                    f":{csrf_secret_digest()}"
                ),
                [f"event:{row.id}"],
                lambda: _event_content(slug),
            )
    depends_on(f"event:{event_id}")  # seats left, registrations: the event's own version
    return render_template("events/event.html", title=title, body=Markup(body))


def _event_content(slug: str) -> tuple[int, str, str]:
    event = services.event_by_slug(db.session, slug)  # the programme: a kept part
    if event is None or not services.can_view(event, current_user):
        abort(404)
    fresh_until(event.starts_at)
    fresh_until(event.ends_at)
    body = render_template(
        "events/_event_body.html",
        event=event,
        parts=event_parts(event),  # the programme, tabs, fees and sections: kept by version
        status_labels=services.STATUS_LABELS,
        format_labels=services.FORMAT_LABELS,
    )
    return event.id, event.title.get(None, event.series.default_language), body
