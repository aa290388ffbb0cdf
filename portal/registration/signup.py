"""Registering: a person registers themself (``register``) or the office adds them
(``organiser_add``); a seat if one is free, else the waiting list.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal.accounts.models import Person
from portal.db import utcnow
from portal.events.models import Event, EventStatus
from portal.registration.choices import _resolve_category, _resolve_mode, clean_answers
from portal.registration.errors import (
    AlreadyRegistered,
    MembershipRequired,
    RegistrationClosed,
    RegistrationError,
)
from portal.registration.fees import _apply_prices, is_member, registration_fields
from portal.registration.models import (
    Registration,
)
from portal.registration.seats import S, _Locked, lock_event, signup_counts
from portal.registration.transitions import _move, _seat_state
from portal.registration.waitlist import promote_then_free


def _place(
    session: Session,
    registration: Registration,
    locked: _Locked,
    now: datetime,
    *,
    actor,
    action: str,
    reason: str = "",
    force: bool = False,
    counts: tuple[int, int, int] | None = None,
) -> Registration:
    """A new (or reopened) registration takes a seat, or joins the waiting list. ``counts``:
    the seats taken, held by it and waiting in its mode, read under the lock already."""
    event = registration.event
    mode = registration.attendance_mode
    free = promote_then_free(session, event, mode, locked, now, actor, registration, counts)
    if force or free is None or free > 0:
        new = _seat_state(registration)
    else:
        new = S.waitlisted
    return _move(
        session,
        registration,
        new,
        actor=actor,
        action=action,
        reason=reason,
        email=new.value,
        now=now,
        mode=mode.value,
        total_minor=registration.total_minor,
        **({"forced": True} if force and free is not None and free <= 0 else {}),
    )


def _existing(session: Session, event: Event, person: Person) -> Registration | None:
    return session.scalar(
        sa.select(Registration)
        .where(Registration.event_id == event.id, Registration.person_id == person.id)
        .execution_options(populate_existing=True)
    )


def build_registration(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    answers: dict | None = None,
    user=None,
    organiser: bool = False,
    now: datetime | None = None,
    fields=None,
) -> Registration:
    """Validate the choices and return an unsaved registration with its price lines.

    Used for the confirmation step (nothing is stored) and by ``register``. ``fields``: the
    event's ``registration_fields`` when the caller has them already (the form's view).
    Raises InvalidChoice / MembershipRequired / RegistrationError with the form field.
    """
    now = now or utcnow()
    attendance_mode = _resolve_mode(event, mode)
    category = _resolve_category(session, event, fee_category, active_only=not organiser)
    if (
        category is not None
        and category.requires_membership
        and not organiser
        and not is_member(user, event.series)
    ):
        raise MembershipRequired(field="fee_category")
    if fields is None:
        fields = registration_fields(event)
    cleaned = clean_answers(fields, answers, enforce_required=not organiser)
    registration = Registration(
        event=event,
        person=person,
        user=user if getattr(user, "is_authenticated", False) else None,
        attendance_mode=attendance_mode,
        fee_category=category,
        answers=cleaned,
    )
    _apply_prices(registration, now)
    return registration


def _check_open(event: Event, locked: _Locked, now: datetime) -> None:
    if locked.status == EventStatus.cancelled:
        raise RegistrationClosed(_l("This event has been cancelled."))
    if locked.status != EventStatus.open or event.ends_at < now:
        raise RegistrationClosed()


def _store(session: Session, draft: Registration, existing: Registration | None) -> Registration:
    """Put the draft's choices into a new row or into the person's cancelled registration."""
    if existing is None:
        return draft  # added to the session when its state is set (_move)
    # Reopening: keep the row (one per person and event), take the new choices.
    for name in (
        "user",
        "attendance_mode",
        "fee_category",
        "answers",
        "price_lines",
        "total_minor",
        "currency",
    ):
        setattr(existing, name, getattr(draft, name))
    existing.checked_in_at = None
    return existing


def register(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    answers: dict | None = None,
    user=None,
    privacy_accepted: bool = False,
    now: datetime | None = None,
    fields=None,
) -> Registration:
    """A participant registers: confirmed (free), pending_payment (paid) or waitlisted (full).

    ``mode`` is an AttendanceMode or its value; ``fee_category`` a FeeCategory or its id (as
    typed in the form). Raises AlreadyRegistered (with ``.registration``) when the person is
    already registered, RegistrationClosed, InvalidChoice, MembershipRequired.
    """
    now = now or utcnow()
    if not privacy_accepted:
        raise RegistrationError(
            _l("Please accept the privacy notice to register."), field="privacy"
        )
    # The event lock comes first, so plugins' price_lines and registration_changed hooks run
    # under it too (one lock order for everything that touches a registration).
    locked = lock_event(session, event)
    draft = build_registration(
        session,
        event,
        person,
        mode=mode,
        fee_category=fee_category,
        answers=answers,
        user=user,
        now=now,
        fields=fields,
    )
    _check_open(event, locked, now)
    # The person's row for the event and the seats of the mode, in one statement.
    existing_id, taken, waiting = signup_counts(
        session, event, person.id, draft.attendance_mode, now
    )
    existing = None
    if existing_id is not None:
        existing = session.get(Registration, existing_id, populate_existing=True)
        if existing.is_active:
            raise AlreadyRegistered(existing)
    registration = _store(session, draft, existing)
    registration.privacy_accepted_at = now
    return _place(
        session,
        registration,
        locked,
        now,
        actor=user,
        action="reregistered" if existing is not None else "registered",
        counts=(taken, 0, waiting),  # a cancelled registration holds no seat
    )


def organiser_add(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    actor,
    answers: dict | None = None,
    reason: str = "",
    force: bool = False,
    now: datetime | None = None,
) -> Registration:
    """An organiser adds a registration by hand (a speaker, a guest).

    Any fee category of the event (also inactive ones), no membership check; the event may be
    a draft or closed, not cancelled. ``force=True`` gives a seat even when the mode is full.
    """
    now = now or utcnow()
    locked = lock_event(session, event)
    draft = build_registration(
        session,
        event,
        person,
        mode=mode,
        fee_category=fee_category,
        answers=answers,
        user=person.user,
        organiser=True,
        now=now,
    )
    if locked.status == EventStatus.cancelled:
        raise RegistrationClosed(_l("This event has been cancelled."))
    existing = _existing(session, event, person)
    if existing is not None and existing.is_active:
        raise AlreadyRegistered(existing, _l("This person is already registered for this event."))
    registration = _store(session, draft, existing)
    return _place(
        session,
        registration,
        locked,
        now,
        actor=actor,
        action="added_by_organiser",
        reason=reason,
        force=force,
    )
