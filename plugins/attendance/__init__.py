"""attendance: participants per meeting, the statistics page of a series, and the import.

What it keeps: one ``MeetingAttendance`` row per meeting with the figures as the organiser
reports them (登録人数 people on the registration list, 参加者数 participants, and their sectors
企業関係者 / 大学関係者 / 官庁他, on site and online where known, 中止 for a cancelled meeting).
Rows come from ``portal attendance import FILE [--series SLUG]`` (the organiser's table for the
years before the portal) or are saved from the portal's registrations and check-ins
(``portal attendance record --event SLUG`` or the button on the organiser's event dashboard).
Until a held meeting's figures are saved, the statistics count its registrations live:
registered = registrations that are not cancelled, participants = registrations marked
attended (checked in on site, or attended online).

Where the figures show:
- ``/<lang>/series/<slug>/statistics`` (with ``chart.svg`` and ``.csv`` beside it): the table
  per meeting, totals, cumulative participants, totals per fiscal year (年度, April–March),
  an optional grouping and filter by fiscal year, and a chart. The plugin is enabled per
  event but the page is per series, so: the series' organisers and administrators can always
  open it (also before the plugin is on anywhere, to check an import); everyone else can when
  the most recent event of the series that has the plugin on has the setting ``public``.
  Otherwise the page answers 404 (anonymous visitors are asked to log in first).
  The table is one report and is not paginated; the ``fy`` filter narrows it to one year.
- ``dashboard_panels``: the event's figures on the organiser's event dashboard.
- ``event_sections``: the figures on the page of a past event when ``public`` is on.
- ``event_tabs``: a link to the statistics page for those who may open it.
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.plugins import Tab

name = "attendance"
scope = "series"  # switched on for a whole series, on its organiser page (portal.plugins)
label = _l("Attendance statistics")
description = _l(
    "Participants per meeting (on site and online, by sector), a statistics page with a chart, "
    "and the import of past figures."
)
default_settings: dict = {"public": False}
settings_labels = {
    "public": _l("Show the attendance figures and the statistics of the series to everyone"),
}


@hookimpl
def blueprints():
    from plugins.attendance.views import bp

    return [bp]


def _settled_meetings_job(session) -> str:
    from plugins.attendance.services import record_settled_meetings

    saved = record_settled_meetings(session)
    session.commit()
    return f"figures saved for {len(saved)} meeting(s)"


@hookimpl
def scheduled_jobs():
    from portal.tasks.jobs import MINUTE, Job

    return [
        Job(
            "attendance-figures",
            _settled_meetings_job,
            24 * 60 * MINUTE,
            30 * MINUTE,
            "save the figures of meetings that ended two weeks ago",
        )
    ]


@hookimpl
def demo_data(session, study_group, workshop):
    """The study group's past figures (Table 1, ``data/study_group_attendance.csv``) on the
    demo's past meetings; importing them again changes nothing."""
    from pathlib import Path

    from plugins.attendance.importer import import_attendance, read_text

    history = Path(__file__).resolve().parent / "data" / "study_group_attendance.csv"
    import_attendance(session, read_text(history), study_group)


@hookimpl
def cli_commands():
    from plugins.attendance.cli import attendance_group

    return [attendance_group]


def _render(template: str, **context) -> Markup:
    from plugins.attendance.views import fiscal_year_label, format_number, meeting_label

    return Markup(
        render_template(
            template,
            num=format_number,
            fiscal_year_label=fiscal_year_label,
            meeting_label=meeting_label,
            **context,
        )
    )


@hookimpl
def event_tabs(event, user):
    from plugins.attendance import services
    from portal.db import db

    if not services.can_see_statistics(db.session, event.series, user, default_settings):
        return []
    return [
        Tab(
            label=str(_l("Attendance statistics")),
            url=url_for("attendance.statistics", slug=event.series.slug),
            plugin=name,
        )
    ]


@hookimpl
def dashboard_panels(event, user):
    from plugins.attendance import services
    from portal.db import db

    if not services.is_organiser(user, event.series):
        return []
    row = services.stored_row(db.session, event)
    saved = services.Figures.of(row) if row is not None else None
    counted = services.figures_from_registrations(db.session, event)
    return [
        _render(
            "attendance/_dashboard_panel.html",
            event=event,
            row=row,
            saved=saved,
            counted=counted,
        )
    ]


@hookimpl
def event_sections(event, user):
    from plugins.attendance import services
    from portal import plugins
    from portal.db import db
    from portal.text import truthy

    if not truthy(plugins.settings(event, name).get("public")):
        return []
    if not event.is_past or event.status.value == "cancelled":
        return []
    figures = services.event_figures(db.session, event)
    if figures is None:
        return []
    return [_render("attendance/_event_section.html", event=event, figures=figures)]
