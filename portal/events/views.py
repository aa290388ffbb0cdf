"""Public pages: home, series, event."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template
from flask_login import current_user

from portal.db import db
from portal.events import services
from portal.events.models import Series
from portal.pagecache import cached_for_visitors, depends_on, fresh_until
from portal.pagination import page_number, paginate

bp = Blueprint("events", __name__, url_prefix="/<lang_code>")


@bp.get("/")
@cached_for_visitors
def home():
    series = list(db.session.scalars(sa.select(Series).order_by(Series.id)))
    events = services.upcoming_events(db.session, current_user)
    for event in events:
        fresh_until(event.ends_at)  # then it leaves the list
    return render_template("events/home.html", series=series, events=events)


@bp.get("/series/<slug>/")
@cached_for_visitors
def series_page(slug: str):
    series = db.session.scalar(sa.select(Series).where(Series.slug == slug))
    if series is None:
        abort(404)
    upcoming = list(db.session.scalars(services.series_events(series, current_user)).unique())
    for event in upcoming:
        fresh_until(event.ends_at)  # then it moves to the past meetings
    past = paginate(
        db.session, services.series_events(series, current_user, upcoming=False), page_number(), 20
    )
    return render_template("events/series.html", series=series, upcoming=upcoming, past=past)


@bp.get("/events/<slug>/")
@cached_for_visitors
def event_page(slug: str):
    event = services.event_with_programme(db.session, slug)
    if event is None or not services.can_view(event, current_user):
        abort(404)
    depends_on(f"event:{event.id}")  # seats left, registrations: the event's own version
    fresh_until(event.starts_at)
    fresh_until(event.ends_at)
    return render_template(
        "events/event.html",
        event=event,
        status_labels=services.STATUS_LABELS,
        format_labels=services.FORMAT_LABELS,
    )
