"""Local time in a named zone ↔ UTC: the one copy of each conversion.

Times are stored as aware UTC datetimes and shown in the event's (or series') own zone.
Forms' ``datetime-local`` inputs give naive local date-times; these helpers convert both ways.
Never use ``date.today()`` or ``datetime.now()`` without a zone: the server's zone is not the
event's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from portal.db import utcnow

# The office's zone, for dates that belong to no event or series (a speaker's affiliation
# ending on a given day): the study group's office in Tokyo keeps the speaker records.
OFFICE_ZONE = "Asia/Tokyo"


def as_utc(moment: datetime | None) -> datetime | None:
    """An instant read back from the database as aware UTC (SQLite returns naive UTC for
    aggregates such as ``min()``), None as None."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def to_utc(local: datetime | None, zone: str) -> datetime | None:
    """A naive local date-time read in ``zone`` (an aware one as it is), as aware UTC."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


def to_local(value: datetime | None, zone: str) -> datetime | None:
    """An aware datetime as the naive local date-time a datetime-local input shows."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def parse_local(text: str | None, zone: str) -> datetime | None:
    """An ISO local time in ``zone`` ("2025-03-01T23:59") as aware UTC; None if not one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return to_utc(value, zone)


def office_today(now: datetime | None = None) -> date:
    """Today's date at the office (``OFFICE_ZONE``), for dates of no particular event."""
    return today(OFFICE_ZONE, now)


def local_date(value: datetime, zone: str) -> date:
    """The calendar date of an instant in ``zone``."""
    return value.astimezone(ZoneInfo(zone)).date()


def today(zone: str, now: datetime | None = None) -> date:
    """Today's date in ``zone`` (not the server's)."""
    return local_date(now or utcnow(), zone)


def start_of_day(day: date, zone: str) -> datetime:
    """Midnight of a local date in ``zone``, as an aware UTC datetime."""
    return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def at(day: date, hour: int, minute: int, zone: str) -> datetime:
    """The aware datetime of a wall-clock time on a local date in ``zone``."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone))


def year_start(year: int, zone: str, first_month: int = 1) -> datetime:
    """The first instant of a year in ``zone``: a calendar year, or a fiscal year starting in
    ``first_month`` (4 for the Japanese 年度), as aware UTC."""
    return start_of_day(date(year, first_month, 1), zone)


def years_case(column, spans: dict[str, tuple[int, int]], *, zone_column=None, first_month=1):
    """A SQL CASE giving the (calendar or fiscal) year of the instant in ``column``, read in
    its own zone: ``spans`` maps each zone to its first and last year; with several zones,
    ``zone_column`` names each row's zone. Lets the database group and filter by local year
    (an index on ``column`` serves the comparisons) in any dialect."""
    whens = []
    for zone, (first, last) in sorted(spans.items()):
        for year in range(first, last + 1):
            condition = column < year_start(year + 1, zone, first_month)
            if zone_column is not None:
                condition = sa.and_(zone_column == zone, condition)
            whens.append((condition, year))
    return sa.case(*whens, else_=None)
