"""Seats: which registrations hold one, how many are left per attendance mode, each waiting
person's place in the queue, and the lock on the event that serialises every check-then-write
(``lock_event``).

Confirmed and attended registrations, and pending-payment ones whose payment deadline has not
passed, hold a seat. ``Event.capacity(mode)`` (None = unlimited).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import has_app_context
from sqlalchemy.orm import Session

from portal.db import db, utcnow
from portal.events.models import AttendanceMode, Event, EventStatus
from portal.mail.services import load_templates
from portal.registration.models import (
    Registration,
    RegistrationState,
)

S = RegistrationState


SEAT_STATES = (S.confirmed, S.attended)


def _holds_seat(now: datetime):
    R = Registration
    return sa.or_(
        R.state.in_(SEAT_STATES),
        sa.and_(
            R.state == S.pending_payment,
            sa.or_(R.payment_deadline.is_(None), R.payment_deadline > now),
        ),
    )


def taken_seats(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    now: datetime | None = None,
    exclude_id: int | None = None,
) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.attendance_mode == mode,
            _holds_seat(now or utcnow()),
        )
    )
    if exclude_id is not None:
        stmt = stmt.where(Registration.id != exclude_id)
    return session.scalar(stmt) or 0


def _total(condition):
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _counts_in_mode(first) -> sa.Select:
    """``first``, seats taken and people waiting in one event's mode (bound parameters
    ``event_id``, ``mode``, ``now``), in one statement."""
    R = Registration
    return sa.select(
        first, _total(_holds_seat(sa.bindparam("now"))), _total(R.state == S.waitlisted)
    ).where(R.event_id == sa.bindparam("event_id"), R.attendance_mode == sa.bindparam("mode"))


_SEAT_COUNTS = _counts_in_mode(
    _total(
        sa.and_(
            _holds_seat(sa.bindparam("now")), Registration.id == sa.bindparam("registration_id")
        )
    )
)  # built once: it runs in every registration (own seat, taken, waiting)
_SIGNUP_COUNTS = _counts_in_mode(
    sa.select(Registration.id)
    .where(
        Registration.event_id == sa.bindparam("event_id"),
        Registration.person_id == sa.bindparam("person_id"),
    )
    .scalar_subquery()
)  # the person's row for the event, taken, waiting


def signup_counts(
    session: Session, event: Event, person_id: int, mode: AttendanceMode, now: datetime
) -> tuple[int | None, int, int]:
    """For a person registering, in one statement under the event's lock: the id of their
    registration for the event if they have one (in any state), seats taken in ``mode`` and
    people waiting in ``mode``."""
    row = session.execute(
        _SIGNUP_COUNTS,
        {"now": now, "event_id": event.id, "person_id": person_id, "mode": mode},
    ).one()
    return row[0], int(row[1]), int(row[2])


def seat_counts(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    now: datetime,
    registration_id: int | None = None,
) -> tuple[int, int, int]:
    """In one statement: seats taken in ``mode``, how many of them ``registration_id`` holds
    (0 or 1), and people waiting in ``mode`` (the registration's own path: docs/performance.md)."""
    own, taken, waiting = session.execute(
        _SEAT_COUNTS,
        {"now": now, "registration_id": registration_id, "event_id": event.id, "mode": mode},
    ).one()
    return int(taken), int(own), int(waiting)


def seats_left(session: Session, event: Event, now: datetime | None = None) -> dict:
    """Free seats per attendance mode in one query (None = unlimited), for display."""
    now = now or utcnow()
    rows = session.execute(
        sa.select(Registration.attendance_mode, sa.func.count())
        .where(Registration.event_id == event.id, _holds_seat(now))
        .group_by(Registration.attendance_mode)
    ).all()
    taken = {mode: n for mode, n in rows}
    out = {}
    for mode in event.attendance_modes:
        cap = event.capacity(mode)
        out[mode] = None if cap is None else max(0, cap - taken.get(mode, 0))
    return out


@dataclass
class _Locked:
    status: EventStatus
    capacity: dict = field(default_factory=dict)


_LOCK = (
    sa.select(Event.status, Event.capacity_onsite, Event.capacity_online)
    .where(Event.id == sa.bindparam("event_id"))
    .with_for_update()
)  # built once: every registration change takes it


def lock_event(session: Session, event: Event) -> _Locked:
    """Serialise registration changes of one event; returns its fresh status and capacities.

    PostgreSQL: ``SELECT … FOR UPDATE`` on the event row, held until the transaction ends.
    SQLite: the writing transaction began with BEGIN IMMEDIATE, so it holds the write lock.
    """
    if has_app_context():  # compile the emails the change may queue before holding anyone
        load_templates("registration")
    db.take_write_lock(session)  # SQLite, after a request's reading part (defer_write_lock)
    row = session.execute(_LOCK, {"event_id": event.id}).one()
    return _Locked(
        status=EventStatus(row.status),
        capacity={
            AttendanceMode.onsite: row.capacity_onsite,
            AttendanceMode.online: row.capacity_online,
        },
    )


def _free(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    locked: _Locked,
    now: datetime,
    exclude_id: int | None = None,
) -> int | None:
    cap = locked.capacity.get(mode)
    if cap is None:
        return None
    return cap - taken_seats(session, event, mode, now, exclude_id)


def _refresh(session: Session, registration: Registration) -> None:
    """Re-read a registration after taking the lock (another request may have changed it)."""
    if registration.id is not None:
        session.refresh(registration)


def waitlist_positions(session: Session, registrations) -> dict[int, int]:
    """Waiting-list positions (1 = next) of the given registrations, in one query."""
    waiting = [r for r in registrations if r.state == S.waitlisted and r.id is not None]
    if not waiting:
        return {}
    position = (
        sa.func.row_number()
        .over(
            partition_by=(Registration.event_id, Registration.attendance_mode),
            order_by=(Registration.waitlisted_at, Registration.id),
        )
        .label("position")
    )
    queue = (
        sa.select(Registration.id, position)
        .where(
            Registration.event_id.in_({r.event_id for r in waiting}),
            Registration.state == S.waitlisted,
        )
        .subquery()
    )
    rows = session.execute(
        sa.select(queue.c.id, queue.c.position).where(queue.c.id.in_([r.id for r in waiting]))
    )
    return {rid: pos for rid, pos in rows}


def _position_statement() -> sa.Select:
    R = Registration
    at, rid = sa.bindparam("waitlisted_at"), sa.bindparam("registration_id")
    return sa.select(sa.func.count()).where(
        R.event_id == sa.bindparam("event_id"),
        R.state == S.waitlisted,
        R.attendance_mode == sa.bindparam("mode"),
        sa.or_(R.waitlisted_at < at, sa.and_(R.waitlisted_at == at, R.id <= rid)),
    )


_POSITION = _position_statement()  # built once: every waiting-list email asks it


def waitlist_position(session: Session, registration: Registration) -> int | None:
    """One registration's place on its waiting list (1 = next): the people of its event and
    mode waiting since before it, counted on the index (the same order as
    ``waitlist_positions``)."""
    if registration.state != S.waitlisted or registration.id is None:
        return None
    if registration.waitlisted_at is None:  # not stamped (old rows): the window's order
        return waitlist_positions(session, [registration]).get(registration.id)
    return session.scalar(
        _POSITION,
        {
            "event_id": registration.event_id,
            "mode": registration.attendance_mode,
            "waitlisted_at": registration.waitlisted_at,
            "registration_id": registration.id,
        },
    )
