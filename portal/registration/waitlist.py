"""The waiting list: when a waitlisted person moves up.

A seat that becomes free goes to the first person waiting in that attendance mode (by
``waitlisted_at``, then id): free registrations are confirmed at once, paid ones get a payment
deadline (``promote_from_waitlist``). Places in the queue: ``seats.waitlist_positions``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from portal.db import utcnow
from portal.events.models import AttendanceMode, Event
from portal.registration.models import (
    Registration,
)
from portal.registration.seats import S, _free, _Locked, lock_event
from portal.registration.transitions import _move, _seat_state


def _promote(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    locked: _Locked,
    now: datetime,
    actor=None,
    skip_id: int | None = None,
) -> list[Registration]:
    free = _free(session, event, mode, locked, now)
    if free is not None and free <= 0:
        return []
    stmt = (
        sa.select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.attendance_mode == mode,
            Registration.state == S.waitlisted,
        )
        .order_by(Registration.waitlisted_at, Registration.id)
        .options(joinedload(Registration.person))
        .execution_options(populate_existing=True)
    )
    if skip_id is not None:
        stmt = stmt.where(Registration.id != skip_id)
    if free is not None:
        stmt = stmt.limit(free)
    promoted = []
    for registration in session.scalars(stmt):
        _move(
            session,
            registration,
            _seat_state(registration),
            actor=actor,
            action="promoted",
            email="promoted",
            now=now,
        )
        promoted.append(registration)
    return promoted


def promote_from_waitlist(
    session: Session, event: Event, mode: AttendanceMode | str, *, actor=None, now=None
) -> list[Registration]:
    """Give the free seats of a mode to the people waiting, first come first served."""
    now = now or utcnow()
    locked = lock_event(session, event)
    return _promote(session, event, AttendanceMode(mode), locked, now, actor)
