"""Organiser state changes: series, events, talks, plugins per event and roles.

Each function checks what it must, changes rows, writes an audit entry and flushes; it never
commits (the view or CLI command commits once).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit, plugins
from portal.accounts.models import Role, User, UserRole
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Series, Talk
from portal.events.services import STATUS_MOVES, StatusChangeError, change_status
from portal.i18n import BilingualText

SERIES_FIELDS = (
    "slug",
    "kind",
    "name",
    "description",
    "default_language",
    "currency",
    "timezone",
)
EVENT_FIELDS = (
    "series_id",
    "number",
    "slug",
    "title",
    "description",
    "starts_at",
    "ends_at",
    "timezone",
    "venue",
    "format",
    "capacity_onsite",
    "capacity_online",
)
TALK_FIELDS = ("title", "speaker_id", "position", "starts_at", "language")


def _plain(value):
    """A value as the audit log stores it (JSON)."""
    if isinstance(value, BilingualText):
        return value.as_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _apply(obj, fields: tuple[str, ...], values: dict) -> dict:
    """Set the given fields; return {field: [old, new]} for those that changed."""
    changes = {}
    for field in fields:
        if field not in values:
            continue
        old, new = getattr(obj, field), values[field]
        if _plain(old) != _plain(new):
            changes[field] = [_plain(old), _plain(new)]
            setattr(obj, field, new)
    return changes


# -- who organises what ----------------------------------------------------------------------


def organised_series_ids(user) -> set[int] | None:
    """The series a person organises; None means every series (administrators)."""
    if user.is_admin:
        return None
    ids = set()
    for role in user.roles:
        if role.role == Role.organiser:
            if role.series_id is None:
                return None
            ids.add(role.series_id)
    return ids


def organised_series(session: Session, user) -> list[Series]:
    ids = organised_series_ids(user)
    stmt = sa.select(Series).order_by(Series.id)
    if ids is not None:
        stmt = stmt.where(Series.id.in_(ids or [-1]))
    return list(session.scalars(stmt))


def organiser_events(series_ids: list[int]) -> sa.Select:
    """Events of the given series: upcoming ones first (soonest first), then past ones
    (latest first)."""
    now = utcnow()
    upcoming = Event.ends_at >= now
    return (
        sa.select(Event)
        .where(Event.series_id.in_(series_ids or [-1]))
        .order_by(
            sa.case((upcoming, 0), else_=1),
            sa.case((upcoming, Event.starts_at), else_=None).asc(),
            Event.starts_at.desc(),
            Event.id,
        )
    )


def registration_counts(session: Session, event_ids: list[int]) -> dict[int, int] | None:
    """Registrations that are not cancelled, per event, in one grouped query; None when the
    registration area is not installed."""
    try:
        from portal.registration.models import Registration, RegistrationState
    except ImportError:
        return None
    if not event_ids:
        return {}
    rows = session.execute(
        sa.select(Registration.event_id, sa.func.count())
        .where(
            Registration.event_id.in_(event_ids),
            Registration.state != RegistrationState.cancelled,
        )
        .group_by(Registration.event_id)
    )
    return {event_id: count for event_id, count in rows}


# -- series ----------------------------------------------------------------------------------


def create_series(session: Session, actor, **values) -> Series:
    series = Series(**{k: v for k, v in values.items() if k in SERIES_FIELDS})
    session.add(series)
    session.flush()
    audit.record(
        session,
        actor,
        "series",
        series.id,
        "created",
        **{k: _plain(getattr(series, k)) for k in SERIES_FIELDS},
    )
    return series


def update_series(session: Session, series: Series, actor, **values) -> dict:
    changes = _apply(series, SERIES_FIELDS, values)
    if changes:
        session.flush()
        audit.record(session, actor, "series", series.id, "updated", changes=changes)
    return changes


# -- events ----------------------------------------------------------------------------------


def create_event(
    session: Session, actor, status: EventStatus = EventStatus.draft, reason: str = "", **values
) -> Event:
    """A new event starts as a draft; another status is reached through ``change_status``
    (so creating an event as "closed" is refused like any forbidden move)."""
    status = EventStatus(status)
    _check_move(EventStatus.draft, status)
    event = Event(**{k: v for k, v in values.items() if k in EVENT_FIELDS})
    event.status = EventStatus.draft
    session.add(event)
    session.flush()
    audit.record(
        session,
        actor,
        "event",
        event.id,
        "created",
        **{k: _plain(getattr(event, k)) for k in EVENT_FIELDS},
    )
    if status != EventStatus.draft:
        change_status(session, event, status, actor, reason)
        session.flush()
    return event


def _check_move(old: EventStatus, new: EventStatus) -> None:
    if new != old and new not in STATUS_MOVES[old]:
        raise StatusChangeError(old, new)


def update_event(
    session: Session,
    event: Event,
    actor,
    status: EventStatus | None = None,
    reason: str = "",
    **values,
) -> dict:
    """Change an event's facts and, through ``change_status``, its status. A forbidden status
    move raises ``StatusChangeError`` before anything is changed."""
    if status is not None:
        status = EventStatus(status)
        _check_move(event.status, status)
    changes = _apply(event, EVENT_FIELDS, values)
    if changes:
        session.flush()
        audit.record(session, actor, "event", event.id, "updated", changes=changes)
    if status is not None and status != event.status:
        change_status(session, event, status, actor, reason)
        session.flush()
    return changes


# -- talks -----------------------------------------------------------------------------------


def add_talk(session: Session, event: Event, actor, **values) -> Talk:
    talk = Talk(event_id=event.id, **{k: v for k, v in values.items() if k in TALK_FIELDS})
    session.add(talk)
    session.flush()
    audit.record(
        session,
        actor,
        "event",
        event.id,
        "talk_added",
        talk_id=talk.id,
        **{k: _plain(getattr(talk, k)) for k in TALK_FIELDS},
    )
    return talk


def update_talk(session: Session, talk: Talk, actor, **values) -> dict:
    changes = _apply(talk, TALK_FIELDS, values)
    if changes:
        session.flush()
        audit.record(
            session, actor, "event", talk.event_id, "talk_updated", talk_id=talk.id, changes=changes
        )
    return changes


def remove_talk(session: Session, talk: Talk, actor) -> None:
    audit.record(
        session,
        actor,
        "event",
        talk.event_id,
        "talk_removed",
        talk_id=talk.id,
        title=_plain(talk.title),
    )
    session.delete(talk)
    session.flush()


# -- roles -----------------------------------------------------------------------------------


class RoleError(UserError):
    """A role that cannot be given or taken."""


def grant_role(
    session: Session, user: User, role: Role, series: Series | None, actor
) -> UserRole | None:
    """Give a user a role (organiser and reviewer need a series). Returns None if the user
    already had it."""
    role = Role(role)
    if role in (Role.organiser, Role.reviewer) and series is None:
        raise RoleError("series required")
    series_id = series.id if series is not None else None
    if any(r.role == role and r.series_id == series_id for r in user.roles):
        return None
    user_role = UserRole(user_id=user.id, role=role, series_id=series_id)
    user.roles.append(user_role)
    session.flush()
    audit.record(
        session, actor, "user", user.id, "role_granted", role=role.value, series_id=series_id
    )
    return user_role


def revoke_role(session: Session, user_role: UserRole, actor) -> None:
    audit.record(
        session,
        actor,
        "user",
        user_role.user_id,
        "role_revoked",
        role=user_role.role.value,
        series_id=user_role.series_id,
    )
    user = user_role.user
    user.roles.remove(user_role)
    session.flush()


# -- reviewers of a series (its organisers appoint them) ----------------------------------------


def series_reviewers(session: Session, series: Series) -> list[UserRole]:
    """The reviewer roles of this series, with their users, by email."""
    from sqlalchemy.orm import joinedload

    return list(
        session.scalars(
            sa.select(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(UserRole.role == Role.reviewer, UserRole.series_id == series.id)
            .options(joinedload(UserRole.user))
            .order_by(User.email)
        ).unique()
    )


def appoint_reviewer(session: Session, series: Series, email: str, actor) -> UserRole | None:
    """An organiser of the series makes the account with this email a reviewer of the series
    (only of this series). Returns None if they already were."""
    address = (email or "").strip().lower()
    user = session.scalar(sa.select(User).where(User.email == address))
    if user is None:
        raise RoleError(_l("Nobody has an account with this email."), field="email")
    return grant_role(session, user, Role.reviewer, series, actor)


def remove_reviewer(session: Session, series: Series, user_role: UserRole, actor) -> None:
    """Take the reviewer role of this series away (never another role or another series')."""
    if user_role.role != Role.reviewer or user_role.series_id != series.id:
        raise RoleError(_l("This is not a reviewer of this series."))
    revoke_role(session, user_role, actor)


# -- plugins per event -----------------------------------------------------------------------


def set_plugin_enabled(session: Session, where, name: str, enabled: bool, actor):
    """Switch a plugin on or off for an event, or a series plugin for a series
    (``portal.plugins.set_enabled``)."""
    return plugins.set_enabled(session, where, name, enabled, actor)


def update_plugin_settings(session: Session, where, name: str, values: dict, actor):
    """Store a plugin's settings for an event or series (``portal.plugins.save_settings``)."""
    return plugins.save_settings(session, where, name, values, actor)
