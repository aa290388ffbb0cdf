"""abstracts: call for abstracts, review, decisions, programme and book of abstracts (講演要旨).

Who does what:
- A logged-in person submits an abstract (title and text in Japanese and/or English, authors in
  order with the presenting author marked, topic, presentation type, optional PDF), saves
  drafts, edits until the deadline and may withdraw. After the deadline nothing changes unless
  an organiser reopens that one abstract, or asks for a revision.
- Organisers of the series assign reviewers (by hand or automatically: balanced load, never an
  author, never someone with the same affiliation as an author), see the scores side by side
  (mean, min–max spread, count), decide (oral, poster, reject, revision) and edit the email
  texts of the event in both languages.
- Reviewers (role ``reviewer`` of the series) see only the abstracts assigned to them; the
  authors are hidden when the event's reviews are anonymised.
- An accepted abstract becomes a ``Talk`` of the event (speaker: the presenting author's
  speaker record); the book of abstracts (HTML and PDF) lists accepted abstracts only.

Dates and time zones: the open and close dates are stored as local times in the event's zone
(ISO strings such as ``2025-03-01T23:59``). Pages always name that zone (e.g. "23:59 EST,
America/New_York") and add UTC. When the reader's profile country has exactly one time zone
(Japan: Asia/Tokyo) and it differs from the event's, the time there is shown as well; for
countries with several zones (USA) the portal does not guess and UTC stands in.

Word limit: counted per language version on the text without Markdown; Latin-script words are
separated by spaces, and Japanese (and other CJK) text, which has none, counts two characters
as one word.

Settings live in the event's plugin row (``default_settings`` below); the organiser edits them
on this plugin's settings page (``/<lang>/events/<slug>/abstracts/manage/settings``). Lists
saved as text through a generic form are read back leniently (see ``services.call_settings``).
The email texts edited by organisers are rows of ``AbstractEmailText``.
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.plugins import Tab

name = "abstracts"
label = _l("Call for abstracts")
description = _l(
    "Abstract submission, review by assigned reviewers, decisions, the programme and the "
    "book of abstracts."
)
settings_endpoint = "abstracts.settings"
default_settings: dict = {
    "opens_at": "",
    "closes_at": "",
    "word_limit": 300,
    "topics": [],
    "presentation_types": ["oral", "poster"],
    "allow_pdf": True,
    "instructions_ja": "",
    "instructions_en": "",
    "criteria": [
        {"key": "originality", "ja": "独創性", "en": "Originality"},
        {"key": "significance", "ja": "重要性", "en": "Significance"},
        {"key": "clarity", "ja": "明快さ", "en": "Clarity"},
    ],
    "scale_max": 5,
    "anonymised_reviews": True,
    "reviewers_per_abstract": 2,
}
settings_labels = {
    "opens_at": _l("Submissions open (local time of the event, YYYY-MM-DDTHH:MM)"),
    "closes_at": _l("Deadline (local time of the event, YYYY-MM-DDTHH:MM)"),
    "word_limit": _l("Word limit"),
    "topics": _l("Topics"),
    "presentation_types": _l("Presentation types"),
    "allow_pdf": _l("A PDF may be attached"),
    "instructions_ja": _l("Instructions (Japanese)"),
    "instructions_en": _l("Instructions (English)"),
    "criteria": _l("Review criteria"),
    "scale_max": _l("Highest score"),
    "anonymised_reviews": _l("Hide the authors from reviewers"),
    "reviewers_per_abstract": _l("Reviewers per abstract"),
}


@hookimpl
def blueprints():
    from plugins.abstracts.views import bp

    return [bp]


@hookimpl
def event_tabs(event, user):
    from plugins.abstracts import services
    from portal.db import db

    tabs = [
        Tab(
            label=str(_l("Call for abstracts")),
            url=url_for("abstracts.call", slug=event.slug),
            plugin=name,
        )
    ]
    if services.has_accepted(db.session, event):
        tabs.append(
            Tab(
                label=str(_l("Book of abstracts")),
                url=url_for("abstracts.book", slug=event.slug),
                plugin=name,
            )
        )
    if getattr(user, "is_authenticated", False):
        if services.is_reviewer(user, event) and services.has_assignments(db.session, event, user):
            tabs.append(
                Tab(
                    label=str(_l("My reviews")),
                    url=url_for("abstracts.reviews", slug=event.slug),
                    plugin=name,
                )
            )
        if user.is_organiser_of(event.series):
            tabs.append(
                Tab(
                    label=str(_l("Manage abstracts")),
                    url=url_for("abstracts.manage", slug=event.slug),
                    plugin=name,
                )
            )
    return tabs


@hookimpl
def dashboard_panels(event, user):
    from plugins.abstracts import services
    from portal.db import db

    if not getattr(user, "is_authenticated", False) or not user.is_organiser_of(event.series):
        return []
    progress = services.progress(db.session, event)
    return [
        Markup(
            render_template(
                "abstracts/_dashboard_panel.html",
                event=event,
                progress=progress,
                flagged=services.flagged_conflict_count(db.session, event),
                state_labels=services.STATE_LABELS,
            )
        )
    ]


@hookimpl
def personal_data(person):
    from plugins.abstracts import services

    return services.personal_data(person)


@hookimpl
def forget_person(person):
    from plugins.abstracts import services

    services.forget_person(person)


@hookimpl
def affiliation_changed(session, person_ids):
    """Re-check the review assignments of people whose affiliation changed."""
    from plugins.abstracts import services

    services.recheck_conflicts(session, person_ids)


@hookimpl
def series_people(series_ids):
    """Authors (and submitters) of abstracts of the series' events."""
    import sqlalchemy as sa

    from plugins.abstracts.models import Abstract, AbstractAuthor
    from portal.events.models import Event

    in_series = sa.select(Event.id).where(Event.series_id.in_(series_ids))
    authors = sa.select(AbstractAuthor.person_id).join(
        Abstract, Abstract.id == AbstractAuthor.abstract_id
    )
    authors = authors.where(Abstract.event_id.in_(in_series), AbstractAuthor.person_id.is_not(None))
    submitters = sa.select(Abstract.submitter_id).where(
        Abstract.event_id.in_(in_series), Abstract.submitter_id.is_not(None)
    )
    return [authors, submitters]
