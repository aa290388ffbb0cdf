"""exchange_meeting: the exchange meeting (意見交換会・交流会), the reception after the meeting.

What it adds, for the events that turn it on (rules in ``services``):
- ``registration_fields``: a checkbox "Join the exchange meeting" with its fee and the places
  left; ``price_lines``: its fee when the person has (or will get) a place;
- ``registration_changed``: a place or the exchange meeting's own waiting list while the
  registration holds a seat; a cancellation frees the place for the first person waiting;
- ``event_sections``: the exchange meeting on the event page and on the participant's
  registration page, with "join" / "leave" for the registered person;
- ``dashboard_panels``: places taken and waiting, links to the list, the CSV and the reception's
  printable check-in list (``/<lang>/organiser/events/<slug>/exchange-meeting/``);
- ``personal_data``: the person's sign-ups.

Settings per event: capacity (0 = no limit), price in whole units of the series' currency
(3000 for ¥3,000), whether online participants may join, and the place and time in both
languages.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.registration.types import PriceLine, RegistrationField

name = "exchange_meeting"
label = _l("Exchange meeting")
description = _l(
    "Sign-up for the exchange meeting (reception) after the meeting, with its own capacity, "
    "fee and waiting list; participant list, CSV and a printable list for the reception."
)
default_settings: dict = {
    "capacity": 0,
    "price": 0,
    "online_may_join": False,
    "venue_ja": "",
    "venue_en": "",
    "time_ja": "",
    "time_en": "",
}
settings_labels = {
    "capacity": _l("Capacity of the exchange meeting (0 = no limit)"),
    "price": _l("Fee of the exchange meeting, in whole units of the currency (e.g. 3000)"),
    "online_may_join": _l("Online participants may join the exchange meeting"),
    "venue_ja": _l("Place of the exchange meeting (Japanese)"),
    "venue_en": _l("Place of the exchange meeting (English)"),
    "time_ja": _l("Time of the exchange meeting (Japanese)"),
    "time_en": _l("Time of the exchange meeting (English)"),
}


def _session(obj=None):
    from sqlalchemy.orm import object_session

    from portal.db import db

    return (object_session(obj) if obj is not None else None) or db.session


@hookimpl
def blueprints():
    from plugins.exchange_meeting.views import bp

    return [bp]


def field_help(event) -> str:
    """The checkbox's help: fee, places left, who may join (whole translated sentences)."""
    from plugins.exchange_meeting import services
    from portal.i18n import current_language, format_money

    st = services.meeting_settings(event)
    sentences = []
    if st.price_minor > 0:
        sentences.append(_("Fee: %(price)s.", price=format_money(st.price_minor, st.currency)))
    else:
        sentences.append(_("Free of charge."))
    left = services.places_left(_session(), event, st)
    if left is not None and left > 0:
        sentences.append(ngettext("%(n)s place left.", "%(n)s places left.", left, n=left))
    elif left == 0:
        sentences.append(
            _("Full: you will join its waiting list, and pay its fee only if you get a place.")
        )
    if not st.online_may_join and len(event.attendance_modes) > 1:
        sentences.append(_("For participants on site."))
    # Japanese sentences follow each other without a space.
    return ("" if current_language() == "ja" else " ").join(sentences)


@hookimpl
def registration_fields(event):
    from plugins.exchange_meeting import services

    st = services.meeting_settings(event)
    if not services.modes_that_may_join(event, st):
        return []
    return [
        RegistrationField(
            name=services.FIELD,
            label=_l("Join the exchange meeting"),
            kind="checkbox",
            help=field_help(event),
        )
    ]


@hookimpl
def price_lines(registration):
    from plugins.exchange_meeting import services

    st = services.meeting_settings(registration.event)
    if st.price_minor <= 0 or not services.wants(registration, st):
        return []
    if not services.predicted_place(_session(registration), registration, st):
        return []
    return [
        PriceLine(
            code=services.LINE_CODE,
            label=_l("Exchange meeting"),
            amount_minor=st.price_minor,
            currency=st.currency,
        )
    ]


@hookimpl
def registration_changed(registration, old, new):
    from plugins.exchange_meeting import services

    services.sync(_session(registration), registration)


@hookimpl
def event_sections(event, user):
    from plugins.exchange_meeting import forms, services
    from portal.db import db, utcnow

    st = services.meeting_settings(event)
    registration, signup = services.mine(db.session, event, user)
    left = services.places_left(db.session, event, st)
    can_change = (
        registration is not None
        and registration.state in services.CHANGEABLE
        and event.status.value != "cancelled"
        and event.starts_at > utcnow()
    )
    html = render_template(
        "exchange_meeting/_section.html",
        event=event,
        st=st,
        left=left,
        registration=registration,
        signup=signup,
        wants=registration is not None and services.wants(registration, st),
        may_join=registration is not None and st.may_join(registration.attendance_mode),
        position=services.position(db.session, signup) if signup is not None else None,
        at_reception=services.fee_at_reception(registration, st) if registration else 0,
        can_change=can_change,
        form=forms.ChangeForm() if can_change else None,
        holding=services.HOLDING,
    )
    return [Markup(html)]


@hookimpl
def dashboard_panels(event, user):
    from plugins.exchange_meeting import services
    from portal.db import db

    if not getattr(user, "is_authenticated", False) or not user.is_organiser_of(event.series):
        return []
    from plugins.exchange_meeting.forms import ChangeForm

    st = services.meeting_settings(event)
    counts = services.counts(db.session, event)
    confirmed = counts[services.SignupState.confirmed]
    return [
        Markup(
            render_template(
                "exchange_meeting/_panel.html",
                event=event,
                st=st,
                confirmed=confirmed,
                waiting=counts[services.SignupState.waitlisted],
                left=None if st.capacity is None else max(0, st.capacity - confirmed),
                form=ChangeForm(),
            )
        )
    ]


@hookimpl
def reception_places(event, registration_ids):
    from plugins.exchange_meeting import services

    return services.confirmed_places(event, registration_ids)


@hookimpl
def personal_data(person):
    from plugins.exchange_meeting import services

    data = services.personal_data(_session(person), person)
    return data if data["signups"] else {}
