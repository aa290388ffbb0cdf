"""The changes to an existing registration, one function each: confirm, mark paid, reprice,
waitlist, cancel, check in, switch the attendance mode, expire unpaid ones, and the office's
change of state with a reason. Each serialises on the event (``lock_event``), then goes through
``transitions._move``; a freed seat goes to the waiting list.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit
from portal.db import utcnow
from portal.events.models import Event
from portal.registration.choices import _resolve_mode
from portal.registration.errors import (
    InvalidChoice,
    NoPlaceAvailable,
    RegistrationError,
    TransitionNotAllowed,
)
from portal.registration.fees import _label_dict, compute_price_lines
from portal.registration.models import (
    Registration,
    RegistrationState,
)
from portal.registration.seats import S, _free, _refresh, lock_event
from portal.registration.transitions import ALLOWED_MOVES, _move, _notify, _seat_state
from portal.registration.waitlist import _promote, promote_then_free


def confirm(
    session: Session,
    registration: Registration,
    *,
    actor=None,
    reason: str = "",
    action: str = "confirmed",
    now: datetime | None = None,
    **data,
) -> Registration:
    """pending_payment → confirmed (a payment arrived). The payments plugin calls this.

    If the payment deadline has passed and the seat has gone to someone else meanwhile,
    raises NoPlaceAvailable (the caller refunds). Confirming twice raises TransitionNotAllowed.
    """
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    if registration.state != S.pending_payment:
        raise TransitionNotAllowed()
    if registration.payment_deadline is not None and registration.payment_deadline <= now:
        free = _free(session, event, registration.attendance_mode, locked, now, registration.id)
        if free is not None and free <= 0:
            raise NoPlaceAvailable()
    return _move(
        session,
        registration,
        S.confirmed,
        actor=actor,
        action=action,
        reason=reason,
        email="confirmed",
        now=now,
        **data,
    )


def mark_paid(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """An organiser records a payment (bank transfer, cash): pending_payment → confirmed."""
    return confirm(session, registration, actor=actor, reason=reason, action="marked_paid", now=now)


def reprice(
    session: Session,
    registration: Registration,
    *,
    answers: dict | None = None,
    actor=None,
    reason: str = "",
    now: datetime | None = None,
) -> bool:
    """A plugin's choice changed (an answer, or a place it gives): store the new answers and
    recompute the plugins' price lines. Returns whether the price lines changed.

    ``answers`` (optional) are merged into ``registration.answers`` whatever the state. Only a
    registration not paid yet (pending payment, waiting list) is repriced; the fee category's
    line keeps the price it had when registering (an early-bird price stays). Once confirmed,
    the price lines are frozen (a plugin settles later extras itself, e.g. on the day). A
    pending payment left with nothing to pay is confirmed. Written to the history as
    ``repriced``. The caller holds the event's lock (``lock_event``) and commits.
    """
    now = now or utcnow()
    if answers:
        merged = dict(registration.answers or {})
        merged.update(answers)
        if merged != (registration.answers or {}):
            registration.answers = merged
    if registration.state not in (S.pending_payment, S.waitlisted):
        return False
    kept = [
        dict(line)
        for line in registration.price_lines or []
        if str(line.get("code", "")).startswith("fee:")
    ]
    extra = [
        {
            "code": line.code,
            "label": _label_dict(line.label),
            "amount_minor": int(line.amount_minor),
            "currency": line.currency.upper(),
        }
        for line in compute_price_lines(registration, now)
        if not line.code.startswith("fee:")
    ]
    lines = kept + extra
    if lines == (registration.price_lines or []):
        return False
    old_total = registration.total_minor
    registration.price_lines = lines
    registration.total_minor = sum(int(line["amount_minor"]) for line in lines)
    session.flush()
    audit.record(
        session,
        actor,
        "registration",
        registration.id,
        "repriced",
        old_total=old_total,
        new_total=registration.total_minor,
        reason=reason,
    )
    if registration.state == S.pending_payment and registration.total_minor == 0:
        _move(
            session,
            registration,
            S.confirmed,
            actor=actor,
            action="confirmed",
            reason=reason,
            email="confirmed",
            now=now,
        )
    return True


def waitlist(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """Move a registration holding a seat to the end of the waiting list (e.g. capacity cut)."""
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    _move(
        session,
        registration,
        S.waitlisted,
        actor=actor,
        action="waitlisted",
        reason=reason,
        email="waitlisted",
        now=now,
    )
    _promote(session, event, registration.attendance_mode, locked, now, actor, registration.id)
    return registration


def cancel(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
    action: str = "cancelled",
    email: str = "cancelled",
) -> Registration:
    """Cancel (取消); a freed seat goes to the first person waiting in that mode."""
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    _move(
        session,
        registration,
        S.cancelled,
        actor=actor,
        action=action,
        reason=reason,
        email=email,
        now=now,
    )
    _promote(session, event, registration.attendance_mode, locked, now, actor)
    return registration


def check_in(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """受付: confirmed → attended. A pending payment must be marked paid first."""
    lock_event(session, registration.event)
    _refresh(session, registration)
    return _move(
        session, registration, S.attended, actor=actor, action="checked_in", reason=reason, now=now
    )


def switch_mode(
    session: Session,
    registration: Registration,
    mode,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """Change between on site and online while the other mode has places.

    A registration holding a seat keeps its state; a waiting one gets a seat in the new mode
    (or the change is refused). The old mode's freed seat goes to its waiting list.
    """
    now = now or utcnow()
    event = registration.event
    new_mode = _resolve_mode(event, mode if mode else "-")
    locked = lock_event(session, event)
    _refresh(session, registration)
    old_mode = registration.attendance_mode
    if registration.state not in (S.pending_payment, S.confirmed, S.waitlisted):
        raise TransitionNotAllowed()
    if new_mode == old_mode:
        raise InvalidChoice(
            _l("You are already registered for this attendance mode."), field="attendance_mode"
        )
    free = promote_then_free(session, event, new_mode, locked, now, actor, registration)
    if free is not None and free <= 0:
        raise NoPlaceAvailable(field="attendance_mode")
    registration.attendance_mode = new_mode
    data = {"old_mode": old_mode.value, "new_mode": new_mode.value}
    if registration.state == S.waitlisted:
        _move(
            session,
            registration,
            _seat_state(registration),
            actor=actor,
            action="mode_switched",
            reason=reason,
            email="mode_switched",
            now=now,
            **data,
        )
    else:
        old = registration.state
        session.add(registration)
        _notify(
            session,
            registration,
            old,
            actor=actor,
            action="mode_switched",
            reason=reason,
            email="mode_switched",
            **data,
        )
    _promote(session, event, old_mode, locked, now, actor)
    return registration


def expire_unpaid(session: Session, *, now: datetime | None = None, actor=None) -> list:
    """Cancel pending payments whose deadline passed; their seats go to the waiting lists."""
    now = now or utcnow()
    overdue = sa.and_(
        Registration.state == S.pending_payment,
        Registration.payment_deadline.is_not(None),
        Registration.payment_deadline <= now,
    )
    event_ids = list(session.scalars(sa.select(Registration.event_id).where(overdue).distinct()))
    expired: list[Registration] = []
    for event_id in sorted(event_ids):
        event = session.get(Event, event_id)
        locked = lock_event(session, event)
        rows = session.scalars(
            sa.select(Registration)
            .where(Registration.event_id == event_id, overdue)
            .order_by(Registration.id)
            .execution_options(populate_existing=True)
        ).all()
        for registration in rows:
            _move(
                session,
                registration,
                S.cancelled,
                actor=actor,
                action="expired",
                reason="payment deadline passed",
                email="expired",
                now=now,
            )
            expired.append(registration)
        for mode in event.attendance_modes:
            _promote(session, event, mode, locked, now, actor)
    return expired


def change_state_by_organiser(
    session: Session,
    registration: Registration,
    new_state,
    *,
    actor,
    reason: str,
    force: bool = False,
    now: datetime | None = None,
) -> Registration:
    """An organiser moves a registration to another state, with a reason (kept in history).

    Moves into a seat (confirmed, pending_payment) respect capacity unless ``force``.
    """
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise RegistrationError(_l("Please give a reason for this change."), field="reason")
    try:
        new = RegistrationState(str(new_state))
    except ValueError:
        raise InvalidChoice(field="state") from None
    old = registration.state
    if new == old:
        raise InvalidChoice(_l("The registration is already in this state."), field="state")
    if new == S.cancelled:
        return cancel(session, registration, actor=actor, reason=reason, now=now)
    if new == S.waitlisted:
        return waitlist(session, registration, actor=actor, reason=reason, now=now)
    if new == S.attended:
        if old != S.confirmed:
            raise TransitionNotAllowed(field="state")
        return check_in(session, registration, actor=actor, reason=reason, now=now)
    if new == S.confirmed and old == S.pending_payment:
        return mark_paid(session, registration, actor=actor, reason=reason, now=now)
    if new == S.confirmed and old == S.attended:
        _refresh(session, registration)
        return _move(
            session,
            registration,
            S.confirmed,
            actor=actor,
            action="check_in_undone",
            reason=reason,
            now=now,
        )
    # A move into a seat: from the waiting list or from cancelled.
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    if new not in ALLOWED_MOVES.get(registration.state, set()):
        raise TransitionNotAllowed(field="state")
    if registration.state == S.cancelled:
        _promote(session, event, registration.attendance_mode, locked, now, actor)
    free = _free(session, event, registration.attendance_mode, locked, now, registration.id)
    if not force and free is not None and free <= 0:
        raise NoPlaceAvailable(field="state")
    return _move(
        session,
        registration,
        new,
        actor=actor,
        action="state_changed_by_organiser",
        reason=reason,
        email=new.value,
        now=now,
        **({"forced": True} if free is not None and free <= 0 else {}),
    )
