"""Queries and state changes for series and events."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from portal import audit
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Series, Talk

STATUS_LABELS = {
    EventStatus.draft: _l("Draft"),
    EventStatus.open: _l("Open for registration"),
    EventStatus.closed: _l("Registration closed"),
    EventStatus.cancelled: _l("Cancelled"),
}

FORMAT_LABELS = {
    "onsite": _l("On site"),
    "online": _l("Online"),
    "hybrid": _l("Hybrid (on site and online)"),
}

# Which status an event may move to from each status.
STATUS_MOVES = {
    EventStatus.draft: {EventStatus.open, EventStatus.cancelled},
    EventStatus.open: {EventStatus.closed, EventStatus.cancelled},
    EventStatus.closed: {EventStatus.open, EventStatus.cancelled},
    EventStatus.cancelled: set(),
}


class StatusChangeError(UserError):
    """An event status change that is not allowed (``old`` → ``new``), said on the form's
    ``status`` field."""

    default_field = "status"

    def __init__(self, old: EventStatus, new: EventStatus):
        self.old, self.new = old, new
        super().__init__(
            _l(
                "An event cannot move from “%(old)s” to “%(new)s”.",
                old=STATUS_LABELS[old],
                new=STATUS_LABELS[new],
            )
        )


def all_series(session: Session) -> list[Series]:
    """Every series, oldest first."""
    return list(session.scalars(sa.select(Series).order_by(Series.id)))


def series_by_slug(session: Session, slug: str) -> Series | None:
    return session.scalar(sa.select(Series).where(Series.slug == slug))


_EVENT_BY_SLUG = sa.select(Event).where(Event.slug == sa.bindparam("slug"))  # built once


def event_by_slug(session: Session, slug: str) -> Event | None:
    """The event at ``slug`` (every event URL asks: the statement has a bound parameter)."""
    return session.scalars(_EVENT_BY_SLUG, {"slug": slug}).first()


def visible_events(user=None) -> sa.Select:
    """Events a visitor may see: everything but drafts (organisers also see their drafts)."""
    stmt = sa.select(Event)
    if user is not None and getattr(user, "is_authenticated", False) and user.is_admin:
        return stmt
    if user is not None and getattr(user, "is_authenticated", False) and user.is_organiser:
        series_ids = [r.series_id for r in user.roles if r.series_id is not None]
        return stmt.where(
            sa.or_(Event.status != EventStatus.draft, Event.series_id.in_(series_ids))
        )
    return stmt.where(Event.status != EventStatus.draft)


def upcoming_events(session: Session, user=None, limit: int = 20) -> list[Event]:
    stmt = (
        visible_events(user).where(Event.ends_at >= utcnow()).order_by(Event.starts_at).limit(limit)
    )
    return list(session.scalars(stmt).unique())


def series_events(series: Series, user=None, upcoming: bool = True) -> sa.Select:
    stmt = visible_events(user).where(Event.series_id == series.id)
    if upcoming:
        return stmt.where(Event.ends_at >= utcnow()).order_by(Event.starts_at)
    return stmt.where(Event.ends_at < utcnow()).order_by(Event.starts_at.desc())


def upcoming_of_series(session: Session, series: Series, user=None) -> list[Event]:
    """The series' events still to come that the viewer may see, soonest first."""
    return list(session.scalars(series_events(series, user)).unique())


def event_with_programme(session: Session, slug: str) -> Event | None:
    return (
        session.scalars(
            sa.select(Event)
            .where(Event.slug == slug)
            .options(selectinload(Event.talks).joinedload(Talk.speaker))
        )
        .unique()
        .first()
    )


def event_summary(session: Session, slug: str):
    """The event's id and status by its address: one light query (no ORM objects)."""
    return session.execute(sa.select(Event.id, Event.status).where(Event.slug == slug)).first()


def can_view(event: Event, user) -> bool:
    if event.status != EventStatus.draft:
        return True
    return bool(getattr(user, "is_authenticated", False) and user.is_organiser_of(event.series))


def change_status(
    session: Session, event: Event, new: EventStatus, actor, reason: str = ""
) -> None:
    """The one way an event's status changes: checked, audited."""
    old = event.status
    if new == old:
        return
    if new not in STATUS_MOVES[old]:
        raise StatusChangeError(old, new)
    event.status = new
    audit.record(
        session, actor, "event", event.id, "status", old=old.value, new=new.value, reason=reason
    )
