"""What the announcement pages read: the announcements of a series, the list's figures, the
people on the list, the events an announcement may link to. No state changes here."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.accounts.models import Person
from portal.announcements.models import (
    Announcement,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from portal.events.models import Event, EventStatus, Series
from portal.pagination import Page, paginate


def announcements_of(series: Series) -> sa.Select:
    """The series' announcements, newest first (for ``paginate``)."""
    return (
        sa.select(Announcement)
        .where(Announcement.series_id == series.id)
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
    )


def status_counts(session: Session, series: Series) -> dict[str, int]:
    """How many entries of the list are in each status (status value → count)."""
    rows = session.execute(
        sa.select(Subscription.status, sa.func.count())
        .where(Subscription.series_id == series.id)
        .group_by(Subscription.status)
    ).all()
    return {SubscriptionStatus(status).value: n for status, n in rows}


def unsubscribes_after(session: Session, series: Series, ids: list[int]) -> dict[int, int]:
    """How many people left the list through each of the announcements ``ids``."""
    if not ids:
        return {}
    notes = {f"announcement:{i}": i for i in ids}
    rows = session.execute(
        sa.select(SubscriptionEvent.note, sa.func.count())
        .where(
            SubscriptionEvent.series_id == series.id,
            SubscriptionEvent.kind == "left",
            SubscriptionEvent.note.in_(list(notes)),
        )
        .group_by(SubscriptionEvent.note)
    ).all()
    return {notes[note]: n for note, n in rows}


def linkable_events(session: Session, series: Series, limit: int = 50) -> list[Event]:
    """The series' published events an announcement may link to, newest first."""
    return list(
        session.scalars(
            sa.select(Event)
            .where(Event.series_id == series.id, Event.status != EventStatus.draft)
            .order_by(Event.starts_at.desc())
            .limit(limit)
        )
    )


def subscribers_page(
    session: Session, series: Series, status: str, page: int, per_page: int
) -> tuple[Page, list[tuple[Subscription, Person]]]:
    """One page of the list (in the order people joined), only ``status`` if it is one:
    the page of ids, then (entry, person) for those ids in one query."""
    stmt = (
        sa.select(Subscription, Person)
        .join(Person, Person.id == Subscription.person_id)
        .where(Subscription.series_id == series.id)
        .order_by(Subscription.id)
    )
    if status:
        stmt = stmt.where(Subscription.status == status)
    found_page = paginate(session, stmt.with_only_columns(Subscription.id), page, per_page)
    rows = []
    if found_page.items:
        found = {
            sub.id: (sub, person)
            for sub, person in session.execute(stmt.where(Subscription.id.in_(found_page.items)))
        }
        rows = [found[i] for i in found_page.items if i in found]
    return found_page, rows
