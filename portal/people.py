"""Which people an organiser may see: the people of their own series.

An organiser (of one series) sees the registrants, speakers, people with a role (members,
reviewers, organisers) of their series, and the people plugins link to it (``series_people``
hook: abstract authors, member companies' people). Anyone else is found only by typing the
exact, complete email address; nothing else about them is listed. Administrators see
everyone. ``docs/security.md`` has the whole access model.
"""

from __future__ import annotations

import sqlalchemy as sa

from portal import plugins


def managed_series_ids(user) -> list[int] | None:
    """Ids of the series the user organises; None for administrators and organisers of every
    series (a role without a series, as ``User.has_role`` reads it)."""
    if getattr(user, "is_admin", False):
        return None
    from portal.accounts.models import Role

    if any(r.role == Role.organiser and r.series_id is None for r in user.roles):
        return None
    return sorted(
        {r.series_id for r in user.roles if r.role == Role.organiser and r.series_id is not None}
    )


def series_person_ids(series_ids) -> sa.Select:
    """A SELECT of the ids of every person linked to one of the series."""
    from portal.accounts.models import User, UserRole
    from portal.events.models import Event, Talk
    from portal.registration.models import Registration

    series_ids = list(series_ids)
    in_series = sa.select(Event.id).where(Event.series_id.in_(series_ids))
    parts = [
        sa.select(Registration.person_id).where(Registration.event_id.in_(in_series)),
        sa.select(Talk.speaker_id).where(
            Talk.event_id.in_(in_series), Talk.speaker_id.is_not(None)
        ),
        sa.select(User.person_id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.series_id.in_(series_ids)),
    ]
    for extra in plugins.manager().hook.series_people(series_ids=series_ids):
        if isinstance(extra, list | tuple):
            parts.extend(extra)
        elif extra is not None:
            parts.append(extra)
    return sa.union(*parts)


def visible_to(user):
    """A condition on ``Person``: the people the user (an organiser) may see listed."""
    from portal.accounts.models import Person

    series_ids = managed_series_ids(user)
    if series_ids is None:
        return sa.true()
    if not series_ids:
        return sa.false()
    return Person.id.in_(series_person_ids(series_ids))


def exact_email(query: str | None) -> str | None:
    """The query as an email address when it is one complete address, else None."""
    from portal.accounts.services import normalise_email

    text = (query or "").strip()
    if " " in text or text.count("@") != 1:
        return None
    local, _, domain = text.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    return normalise_email(text)


def findable(user, query: str | None):
    """A condition on ``Person``: visible to the user, or found by exact complete email."""
    from portal.accounts.models import Person

    email = exact_email(query)
    condition = visible_to(user)
    if email:
        condition = sa.or_(condition, sa.func.lower(Person.email) == email)
    return condition


def emails_shown(session, user, person_ids) -> set[int] | None:
    """Which of these people's email addresses the user (an organiser) may read: the people of
    their own series. None means all (administrators). One statement for a page of people."""
    from portal.accounts.models import Person

    if managed_series_ids(user) is None:
        return None
    ids = list(person_ids)
    if not ids:
        return set()
    return set(session.scalars(sa.select(Person.id).where(Person.id.in_(ids), visible_to(user))))


def email_column(user, column):
    """``column`` (an email) where the user may read it, else NULL: for statements that list
    people of both series (the shared speaker directory's CSV)."""
    if managed_series_ids(user) is None:
        return column
    return sa.case((visible_to(user), column), else_=sa.null())


def may_see(session, user, person, query: str | None = None) -> bool:
    """Whether the organiser may see this person (own series, or exact email typed)."""
    from portal.accounts.models import Person

    if person is None:
        return False
    return bool(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Person)
            .where(Person.id == person.id, findable(user, query))
        )
    )
