"""webinar: the webinar (ウェビナー / オンライン参加) of a hybrid or online meeting.

What it adds, for the events that turn it on (rules in ``services``):
- ``event_sections``: the webinar URL and passcode on the event page and on the participant's
  registration page, for people registered online with a confirmed (or attended) registration
  from ``minutes_before`` minutes before the start, and for organisers; everyone else sees a
  note, never the link or passcode;
- ``cli_commands``: ``portal webinar remind`` queues the reminder email of the day before
  (once per registration);
- a page for organisers to import the webinar service's attendance report (CSV):
  ``/<lang>/organiser/events/<slug>/webinar/`` (check-in of online participants, minutes);
- ``dashboard_panels``: the link's state, reminders sent and attendance recorded;
- ``personal_data``: the person's online minutes and reminders.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl

name = "webinar"
label = _l("Webinar")
description = _l(
    "The webinar link and passcode for online participants from a set time before the start, "
    "a reminder email the day before, and the import of the attendance report."
)
default_settings: dict = {
    "url": "",
    "passcode": "",
    "minutes_before": 30,
    "reminder": True,
}
settings_labels = {
    "url": _l("Webinar URL"),
    "passcode": _l("Passcode"),
    "minutes_before": _l("Minutes before the start when the link appears"),
    "reminder": _l("Send the reminder email the day before"),
}


@hookimpl
def blueprints():
    from plugins.webinar.views import bp

    return [bp]


@hookimpl
def cli_commands():
    from plugins.webinar.cli import webinar_group

    return [webinar_group]


def _reminders_job(session) -> str:
    from plugins.webinar.services import remind

    queued = remind(session)
    session.commit()
    return f"queued {len(queued)} reminders"


@hookimpl
def scheduled_jobs():
    from portal.tasks.jobs import MINUTE, Job

    return [
        Job(
            "webinar-reminders",
            _reminders_job,
            60 * MINUTE,
            30 * MINUTE,
            "queue the webinar reminder of the day before",
        )
    ]


@hookimpl
def event_sections(event, user):
    from zoneinfo import ZoneInfo

    from plugins.webinar import services
    from portal.db import db, utcnow
    from portal.registration.services import my_registration

    st = services.webinar_settings(event)
    now = utcnow()
    registration = my_registration(db.session, event, user)
    access = services.access(event, user, registration, st, now)
    zone = ZoneInfo(event.timezone)
    # The section changes by itself when the link is revealed and at midnight (same_day):
    # a page kept in the shared cache is rendered again then (portal/pagecache.py).
    from datetime import datetime, time, timedelta

    from portal.pagecache import fresh_until

    fresh_until(access.reveal_at)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    fresh_until(datetime.combine(tomorrow, time(0), tzinfo=zone))
    html = render_template(
        "webinar/_section.html",
        event=event,
        st=st if access.visible else None,  # nobody else gets the link into their page
        minutes_before=st.minutes_before,
        access=access,
        zone=services.zone_name(access.reveal_at, event.timezone),
        same_day=access.reveal_at.astimezone(zone).date() == now.astimezone(zone).date(),
    )
    return [Markup(html)]


@hookimpl
def dashboard_panels(event, user):
    from plugins.webinar import services
    from portal.db import db

    if not getattr(user, "is_authenticated", False) or not user.is_organiser_of(event.series):
        return []
    st = services.webinar_settings(event)
    return [
        Markup(
            render_template(
                "webinar/_panel.html",
                event=event,
                st=st,
                reveal_at=services.reveal_at(event, st),
                figures=services.figures(db.session, event),
            )
        )
    ]


@hookimpl
def personal_data(person):
    from plugins.webinar import services
    from portal.db import db

    data = services.personal_data(db.session, person)
    return data if any(data.values()) else {}
