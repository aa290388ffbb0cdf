"""The announcements area's part of the app-wide personal-data hooks (``portal.plugins.CORE_HOOKS``):
a person's lists in their data download, and leaving every list when their account is deleted."""

from __future__ import annotations

import sqlalchemy as sa

from portal.db import session_of
from portal.hookspecs import hookimpl

name = "announcements"  # the key of this area's part of the data download
core = True


@hookimpl
def personal_data(person):
    from portal.announcements.models import AnnouncementDelivery, Subscription

    session = session_of(person)
    subs = session.scalars(
        sa.select(Subscription).where(Subscription.person_id == person.id).order_by(Subscription.id)
    )
    sent = session.execute(
        sa.select(AnnouncementDelivery.announcement_id, AnnouncementDelivery.sent_at)
        .where(AnnouncementDelivery.person_id == person.id)
        .order_by(AnnouncementDelivery.id)
    ).all()
    return {
        "lists": [
            {
                "series": sub.series.slug,
                "status": sub.status.value,
                "language": sub.language,
                "since": sub.created_at.isoformat(),
            }
            for sub in subs
        ],
        "announcements_received": [
            {"announcement": a, "sent_at": at.isoformat() if at else None} for a, at in sent
        ],
    }


@hookimpl
def forget_person(person):
    """The person leaves every list (the history keeps the count right); the address leaves
    their deliveries."""
    from portal.announcements import subscriptions
    from portal.announcements.models import AnnouncementDelivery, Subscription, SubscriptionStatus

    session = session_of(person)
    for sub in session.scalars(sa.select(Subscription).where(Subscription.person_id == person.id)):
        if sub.status != SubscriptionStatus.left:
            subscriptions.move(
                session, sub, SubscriptionStatus.left, "left", note="account deleted"
            )
    session.execute(
        sa.update(AnnouncementDelivery)
        .where(AnnouncementDelivery.person_id == person.id)
        .values(email="")
        .execution_options(synchronize_session=False)
    )
