"""登録人数: the number of people on a series' list on a day, from the list's history.

A day's count is the sum of the history's ``delta`` up to the end of that day in the series'
time zone. Before the list was kept in the portal (its first history entry) there is no count:
``list_sizes`` gives None for those days and the imported figure stands.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.announcements.models import ON_LIST, Subscription, SubscriptionEvent
from portal.events.models import Series
from portal.localtime import local_date, start_of_day


def list_history(session: Session, series: Series):
    """The list's history read once (one query): a function giving, for some days, the people
    on the list at the end of each day (None before the list was kept). For a long table
    read in pieces (the attendance CSV of the whole history)."""
    rows = session.execute(
        sa.select(SubscriptionEvent.at, SubscriptionEvent.delta)
        .where(SubscriptionEvent.series_id == series.id)
        .order_by(SubscriptionEvent.at, SubscriptionEvent.id)
    ).all()
    zone = series.timezone
    first_day = local_date(rows[0][0], zone) if rows else None
    moments = [at for at, _ in rows]
    running = list(itertools.accumulate(delta for _, delta in rows))

    def sizes(days: Iterable[date]) -> dict[date, int | None]:
        result: dict[date, int | None] = {}
        for day in days:
            if first_day is None or day < first_day:
                result[day] = None
                continue
            end = start_of_day(day + timedelta(days=1), zone)
            index = bisect.bisect_left(moments, end)
            result[day] = running[index - 1] if index else 0
        return result

    return sizes


def list_sizes(session: Session, series: Series, days: Iterable[date]) -> dict[date, int | None]:
    """People on the list at the end of each day (None before the list was kept). One query."""
    return list_history(session, series)(days)


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
