"""Who receives an announcement: one SELECT of (person id, address, language), one row per
person, used as it is by the INSERT … SELECT that creates the deliveries.

- ``list``: people who confirmed that they are on the list (imported-but-unconfirmed,
  pending, left and undeliverable people receive nothing);
- ``members``: … who belong to a member company of the series (the ``member_people`` hook;
  without a plugin that answers, nobody);
- ``participants``: … who took part in a meeting of the series in the last year. The portal
  asks no separate "may we contact you" question at registration: the list's own consent box
  is that consent, so only participants on the list receive it;
- ``speakers``: the speakers of the series' meetings of the last year and of the
  announcement's meeting, with the language of their list entry or their own; speakers who
  left the list or whose address bounces are left out.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import plugins
from portal.accounts.models import Person
from portal.announcements.models import Announcement, Audience, Subscription, SubscriptionStatus
from portal.db import utcnow
from portal.events.models import Event, Talk

YEAR = timedelta(days=365)


def _addressable():
    return sa.and_(Person.email.is_not(None), Person.email != "", Person.anonymised_at.is_(None))


def _confirmed(series_id: int) -> sa.Select:
    return (
        sa.select(Subscription.person_id, Person.email, Subscription.language)
        .join(Person, Person.id == Subscription.person_id)
        .where(
            Subscription.series_id == series_id,
            Subscription.status == SubscriptionStatus.confirmed,
            _addressable(),
        )
    )


def member_people(series) -> list[sa.Select]:
    pm = plugins.manager()
    return [s for s in plugins.collect(pm.hook.member_people(series=series)) if s is not None]


def recipients(session: Session, announcement: Announcement, now=None) -> sa.Select:
    """SELECT person_id, email, language of the announcement's audience."""
    series = announcement.series
    now = now or utcnow()
    audience = Audience(announcement.audience)
    stmt = _confirmed(series.id)
    if audience == Audience.list:
        return stmt
    if audience == Audience.members:
        selects = member_people(series)
        if not selects:
            return stmt.where(sa.false())
        return stmt.where(Subscription.person_id.in_(sa.union(*selects)))
    if audience == Audience.participants:
        from portal.registration.models import Registration, RegistrationState

        took_part = (
            sa.select(Registration.person_id)
            .join(Event, Event.id == Registration.event_id)
            .where(
                Event.series_id == series.id,
                Event.starts_at >= now - YEAR,
                Event.starts_at <= now,
                Registration.state == RegistrationState.attended,
            )
        )
        return stmt.where(Subscription.person_id.in_(took_part))
    # speakers
    talk_events = sa.select(Event.id).where(
        Event.series_id == series.id,
        sa.or_(Event.starts_at >= now - YEAR, Event.id == (announcement.event_id or 0)),
    )
    speaker_ids = sa.select(Talk.speaker_id).where(
        Talk.event_id.in_(talk_events), Talk.speaker_id.is_not(None)
    )
    sub = sa.orm.aliased(Subscription)
    return (
        sa.select(
            Person.id,
            Person.email,
            sa.func.coalesce(sub.language, Person.preferred_language),
        )
        .outerjoin(sub, sa.and_(sub.person_id == Person.id, sub.series_id == series.id))
        .where(
            Person.id.in_(speaker_ids),
            _addressable(),
            sa.or_(
                sub.id.is_(None),
                sub.status.not_in([SubscriptionStatus.left, SubscriptionStatus.undeliverable]),
            ),
        )
    )


def count(session: Session, announcement: Announcement) -> int:
    stmt = recipients(session, announcement)
    return session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
