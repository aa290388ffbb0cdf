"""The registration area's part of the app-wide personal-data hooks.

The core's own areas answer ``personal_data`` and ``forget_person`` through the same hooks as
plugins (``portal.plugins.CORE_HOOKS``), so the accounts area needs to know none of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import session_of, utcnow
from portal.events.models import Event
from portal.hookspecs import hookimpl
from portal.registration.changes import cancel
from portal.registration.models import Registration, RegistrationState

name = "registrations"  # the key of this area's part of the data download
core = True


@hookimpl
def personal_data(person):
    rows = session_of(person).scalars(
        sa.select(Registration)
        .where(Registration.person_id == person.id)
        .options(joinedload(Registration.event))  # one statement, not one per registration
        .order_by(Registration.id)
    )
    return [
        {
            "event": r.event.slug,
            "state": r.state,
            "attendance_mode": r.attendance_mode,
            "answers": r.answers,
            "price_lines": r.price_lines,
            "total_minor": r.total_minor,
            "currency": r.currency,
            "created_at": r.created_at,
            "checked_in_at": r.checked_in_at,
        }
        for r in rows
    ]


@hookimpl(tryfirst=True)
def forget_person(person):
    """A person who leaves gives back their seats at events still to come."""
    session = session_of(person)
    upcoming = session.scalars(
        sa.select(Registration)
        .join(Event, Registration.event_id == Event.id)
        .where(
            Registration.person_id == person.id,
            Registration.state.in_(
                [
                    RegistrationState.confirmed,
                    RegistrationState.pending_payment,
                    RegistrationState.waitlisted,
                ]
            ),
            Event.starts_at > utcnow(),
        )
    )
    for registration in list(upcoming):
        cancel(session, registration, actor=None, reason="account deleted")
