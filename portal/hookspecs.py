"""Every plugin hook, each with a one-line docstring. Documented in docs/plugins.md.

App-wide hooks run for every installed plugin. Event-scoped hooks (marked "event-scoped")
run only for the plugins an organiser enabled on that event; call them through
``portal.plugins.event_hooks(event)``. Hooks return data; they do not reach into the app.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("portal")
hookimpl = pluggy.HookimplMarker("portal")


# -- app-wide --------------------------------------------------------------------------------


@hookspec
def blueprints():
    """Return Flask blueprints to mount on the app (app-wide)."""


@hookspec
def cli_commands():
    """Return click commands to add under the ``portal`` command (app-wide)."""


@hookspec
def scheduled_jobs():
    """Return the plugin's periodic jobs, a list of ``portal.tasks.jobs.Job``; the scheduler runs each once per period under its lock, whatever the number of machines (app-wide)."""


@hookspec
def demo_data(session, study_group, workshop):
    """Add this plugin's rows to the demo data of the two demo series; running it twice changes nothing (app-wide)."""


@hookspec
def member_people(series):
    """Return a SELECT of person ids who belong to a member company of the series this year, or None (app-wide; the announcements' "members" audience)."""


@hookspec(firstresult=True)
def member_status(user, series):
    """Return True or False if this plugin knows whether the user belongs to a member company of the series, else None (app-wide, first answer wins)."""


# -- event-scoped ----------------------------------------------------------------------------


@hookspec
def event_tabs(event, user):
    """Return a list of ``portal.plugins.Tab`` links shown on the event page (event-scoped)."""


@hookspec
def event_sections(event, user):
    """Return a list of HTML blocks (Markup) appended to the event page (event-scoped)."""


@hookspec
def dashboard_panels(event, user):
    """Return a list of HTML blocks (Markup) for the organiser's event dashboard (event-scoped)."""


@hookspec
def registration_fields(event):
    """Return extra fields for the event's registration form, as ``portal.registration.types.RegistrationField`` (event-scoped)."""


@hookspec
def price_lines(registration):
    """Return fee lines (``portal.registration.types.PriceLine``) this plugin adds to a registration (event-scoped)."""


@hookspec
def payment_methods(event, registration):
    """Return ways to pay (``portal.registration.types.PaymentMethod``) offered for a registration (event-scoped)."""


@hookspec
def payment_providers():
    """Return payment providers (``portal.payments.providers.PaymentProvider`` instances) this plugin contributes (app-wide; offered only on events that enable the plugin)."""


@hookspec
def registration_sections(registration, user):
    """Return a list of HTML blocks (Markup) shown on the participant's registration page (event-scoped, the registration's event)."""


@hookspec
def registration_changed(registration, old, new):
    """React to a registration's state change from ``old`` to ``new``; returns nothing (event-scoped)."""


@hookspec(firstresult=True)
def reception_places(event, registration_ids):
    """Return {registration id: True/False}, whether each registration has a confirmed place at the event's reception (意見交換会); ``registration_ids`` None: only the registrations that have one. None when the plugin keeps no reception (event-scoped, first answer wins)."""


@hookspec
def talk_links(talk, user):
    """Return a list of ``portal.plugins.Tab`` links shown beside a talk, e.g. its slides (event-scoped, the talk's event)."""


@hookspec
def personal_data(person):
    """Return a dict of what this plugin stores about a person, for their data download (app-wide)."""


@hookspec
def series_people(series_ids):
    """Return a SELECT (or a list of them) of person ids this plugin links to the given series (authors, company members), or None (app-wide; organisers see these people)."""


@hookspec
def forget_person(person):
    """Erase or anonymise what this plugin stores about a person who deleted their account (app-wide)."""


@hookspec
def affiliation_changed(session, person_ids):
    """These people's affiliation or institution changed (a list of person ids; app-wide): re-check what depends on it, e.g. conflicts of interest. Change rows on ``session``, never commit."""
