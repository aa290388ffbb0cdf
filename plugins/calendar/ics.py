"""The .ics file of an event (RFC 5545), with its time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import icalendar

from portal.db import utcnow


def event_calendar(event, url: str, lang: str) -> bytes:
    zone = ZoneInfo(event.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Rare Metal Portal//portal//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    vevent = icalendar.Event()
    vevent.add("uid", f"event-{event.id}@rare-metal-portal")
    vevent.add("dtstamp", utcnow())
    vevent.add("dtstart", event.starts_at.astimezone(zone))
    vevent.add("dtend", event.ends_at.astimezone(zone))
    default = event.series.default_language
    vevent.add("summary", event.title.get(lang, default))
    description = event.description.get(lang, default)
    vevent.add("description", f"{description}\n\n{url}".strip())
    venue = event.venue.get(lang, default)
    if venue:
        vevent.add("location", venue)
    vevent.add("url", url)
    if event.status.value == "cancelled":
        vevent.add("status", "CANCELLED")
    else:
        vevent.add("status", "CONFIRMED")
    cal.add_component(vevent)
    cal.add_missing_timezones()
    return cal.to_ical()
