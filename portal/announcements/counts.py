"""登録人数: the number of people on a series' list on a day, from the list's history.

A day's count is the sum of the history's ``delta`` up to the end of that day in the series'
time zone. Before the list was kept in the portal (its first history entry) there is no count:
``list_sizes`` gives None for those days and the imported figure stands.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.announcements.models import ON_LIST, Subscription, SubscriptionEvent
from portal.events.models import Series
from portal.localtime import local_date, start_of_day


def list_sizes(session: Session, series: Series, days: Iterable[date]) -> dict[date, int | None]:
    """People on the list at the end of each day (None before the list was kept). One query."""
    rows = session.execute(
        sa.select(SubscriptionEvent.at, SubscriptionEvent.delta)
        .where(SubscriptionEvent.series_id == series.id)
        .order_by(SubscriptionEvent.at, SubscriptionEvent.id)
    ).all()
    days = list(days)
    if not rows:
        return dict.fromkeys(days, None)
    first_day = local_date(rows[0][0], series.timezone)
    moments = [at for at, _ in rows]
    running = []
    total = 0
    for _, delta in rows:
        total += delta
        running.append(total)
    result: dict[date, int | None] = {}
    for day in days:
        if day < first_day:
            result[day] = None
            continue
        end = start_of_day(day + timedelta(days=1), series.timezone)
        index = bisect.bisect_left(moments, end)
        result[day] = running[index - 1] if index else 0
    return result


def list_size_on(session: Session, series: Series, day: date) -> int | None:
    return list_sizes(session, series, [day])[day]


def current_size(session: Session, series: Series) -> int:
    """People on the list now (from the subscriptions themselves)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(Subscription.series_id == series.id, Subscription.status.in_(ON_LIST))
        )
        or 0
    )
