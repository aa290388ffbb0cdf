"""Times shown to an author in the event's zone and, where it differs, their own country's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global
from flask_babel import gettext as _

from portal.accounts.models import Person
from portal.events.models import Event
from portal.i18n import (
    format_datetime,
    format_zone,
)

_ZONES_BY_COUNTRY: dict[str, list[str]] | None = None


def country_zone(country: str | None) -> str | None:
    """The time zone of a country that has exactly one (JP → Asia/Tokyo); else None."""
    global _ZONES_BY_COUNTRY
    if _ZONES_BY_COUNTRY is None:
        table: dict[str, list[str]] = {}
        for zone, territory in get_global("zone_territories").items():
            table.setdefault(territory, []).append(zone)
        _ZONES_BY_COUNTRY = table
    zones = _ZONES_BY_COUNTRY.get((country or "").upper(), [])
    if len(zones) != 1:
        return None
    try:
        ZoneInfo(zones[0])
    except ZoneInfoNotFoundError:
        return None
    return zones[0]


def _same_clock(value: datetime, zone_a: str, zone_b: str) -> bool:
    return (
        value.astimezone(ZoneInfo(zone_a)).utcoffset()
        == value.astimezone(ZoneInfo(zone_b)).utcoffset()
    )


def time_lines(value: datetime | None, event: Event, person: Person | None = None) -> list[str]:
    """A moment as people read it: in the event's zone (named), in theirs if known, in UTC."""
    if value is None:
        return []
    lines = [
        _(
            "%(time)s (event time, %(zone)s)",
            time=format_datetime(value, event.timezone),
            zone=format_zone(event.timezone, None, value),
        )
    ]
    zone = country_zone(getattr(person, "country", None)) if person is not None else None
    if zone and zone != event.timezone and not _same_clock(value, zone, event.timezone):
        lines.append(
            _(
                "%(time)s (your time, %(zone)s)",
                time=format_datetime(value, zone),
                zone=format_zone(zone, None, value),
            )
        )
    if not _same_clock(value, "UTC", event.timezone):
        lines.append(format_datetime(value, "UTC"))
    return lines
