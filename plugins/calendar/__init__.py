"""calendar: an "add to calendar" link and an .ics file per event, in the event's time zone."""

from __future__ import annotations

from flask import url_for
from flask_babel import lazy_gettext as _l

from portal.hookspecs import hookimpl
from portal.plugins import Tab

name = "calendar"
label = _l("Calendar")
description = _l("An “add to calendar” link and an .ics file for the event.")
default_settings: dict = {}


@hookimpl
def blueprints():
    from plugins.calendar.views import bp

    return [bp]


@hookimpl
def event_tabs(event, user):
    return [
        Tab(
            label=str(_l("Add to calendar")),
            url=url_for("calendar.ics", slug=event.slug),
            plugin=name,
        )
    ]
