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
from portal.registration.seats import S, _free, _Locked, lock_event, seat_counts
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
    return _promote_waiting(session, event, mode, free, now, actor, skip_id)


def _promote_waiting(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    free: int | None,
    now: datetime,
    actor=None,
    skip_id: int | None = None,
) -> list[Registration]:
    """Move up to ``free`` people waiting in ``mode`` (all of them if None) into seats."""
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


def promote_then_free(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    locked: _Locked,
    now: datetime,
    actor,
    registration: Registration,
    counts: tuple[int, int, int] | None = None,
) -> int | None:
    """Those already waiting come first: free seats of ``mode`` go to them; then the seats
    left for ``registration`` (its own seat not counted; None = unlimited).

    The same as ``_promote`` followed by ``_free(..., exclude_id=registration.id)``, in one
    statement when nobody is waiting (every registration of a rush). ``counts``: that
    statement's (taken, own, waiting) when the caller has read them under the lock already."""
    cap = locked.capacity.get(mode)
    if counts is None:
        counts = seat_counts(session, event, mode, now, registration.id)
    taken, own, waiting = counts
    free = None if cap is None else cap - taken
    if waiting and (free is None or free > 0):
        if _promote_waiting(session, event, mode, free, now, actor):
            return _free(session, event, mode, locked, now, exclude_id=registration.id)
    return None if cap is None else cap - (taken - own)


def promote_from_waitlist(
    session: Session, event: Event, mode: AttendanceMode | str, *, actor=None, now=None
) -> list[Registration]:
    """Give the free seats of a mode to the people waiting, first come first served."""
    now = now or utcnow()
    locked = lock_event(session, event)
    return _promote(session, event, AttendanceMode(mode), locked, now, actor)
