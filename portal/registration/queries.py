"""Reading registrations: one person's, an event's list and roster for the office, the history
of one registration, and the counts per state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from portal.accounts.models import Person, Sector
from portal.accounts.search import person_matches
from portal.events.models import AttendanceMode, Event
from portal.params import int_or_none
from portal.registration.models import (
    Registration,
    RegistrationState,
)
from portal.registration.people import person_search
from portal.registration.seats import S


def my_registration(session: Session, event: Event, user) -> Registration | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return session.scalar(
        sa.select(Registration).where(
            Registration.event_id == event.id, Registration.person_id == user.person_id
        )
    )


def my_registrations(user) -> sa.Select:
    """The user's registrations, newest event first (for pagination)."""
    return (
        sa.select(Registration)
        .join(Event, Registration.event_id == Event.id)
        .where(Registration.person_id == user.person_id)
        .options(
            joinedload(Registration.event).joinedload(Event.series),
            joinedload(Registration.fee_category),
        )
        .order_by(Event.starts_at.desc(), Registration.id)
    )


def get_for_person(session: Session, reg_id: int, user) -> Registration | None:
    """The user's own registration, or None (other people's registrations are not found)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return session.scalar(
        sa.select(Registration)
        .where(Registration.id == reg_id, Registration.person_id == user.person_id)
        .options(
            joinedload(Registration.event).joinedload(Event.series),
            joinedload(Registration.fee_category),
            joinedload(Registration.person),
        )
    )


def organiser_list(
    event: Event,
    *,
    state: str = "",
    mode: str = "",
    fee_category_id: str | int = "",
    sector: str = "",
    q: str = "",
) -> sa.Select:
    """Registrations of an event for the organiser, filtered; person and category eager-loaded."""
    stmt = (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id)
        .options(
            joinedload(Registration.person),
            joinedload(Registration.fee_category),
        )
    )
    if state in {s.value for s in RegistrationState}:
        stmt = stmt.where(Registration.state == RegistrationState(state))
    if mode in {m.value for m in AttendanceMode}:
        stmt = stmt.where(Registration.attendance_mode == AttendanceMode(mode))
    if int_or_none(fee_category_id) is not None:
        stmt = stmt.where(Registration.fee_category_id == int_or_none(fee_category_id))
    if sector in {s.value for s in Sector}:
        stmt = stmt.where(Person.sector == Sector(sector))
    if q and q.strip():
        stmt = stmt.where(person_search(q))
    return stmt.order_by(Registration.created_at, Registration.id)


LIST_STATES = (S.confirmed, S.attended, S.pending_payment)  # on the lists, at the door


def roster(event: Event, mode: AttendanceMode | None = AttendanceMode.onsite) -> sa.Select:
    """Everyone expected or present, by kana/romanised name: the printable reception (受付)
    list, on-site participants only (online ones are on the webinar's list); ``mode=None``
    gives both."""
    conditions = [
        Registration.event_id == event.id,
        Registration.state.in_(LIST_STATES),
    ]
    if mode is not None:
        conditions.append(Registration.attendance_mode == mode)
    return (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(*conditions)
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
        .order_by(
            Person.family_name_kana,
            Person.given_name_kana,
            Person.romanized_name,
            Registration.id,
        )
    )


def get_for_event(session: Session, event: Event, reg_id: int) -> Registration | None:
    return session.scalar(
        sa.select(Registration)
        .where(Registration.id == reg_id, Registration.event_id == event.id)
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
    )


def history(session: Session, registration: Registration) -> list:
    """The registration's history: audit entries with their actors, oldest first."""
    from portal.accounts.models import User
    from portal.audit import AuditEntry

    return list(
        session.execute(
            sa.select(AuditEntry, User)
            .outerjoin(User, AuditEntry.actor_id == User.id)
            .where(
                AuditEntry.subject_type == "registration",
                AuditEntry.subject_id == registration.id,
            )
            .order_by(AuditEntry.at, AuditEntry.id)
        ).all()
    )


_ANY = object()


@dataclass
class RegistrationCounts:
    """Counts by (state, mode, sector) from one grouped query; ``get`` adds them up.

    Leave out an argument to count all of it; ``sector=None`` counts people without a sector.
    """

    rows: list = field(default_factory=list)

    def get(self, state=_ANY, mode=_ANY, sector=_ANY) -> int:
        return sum(
            n
            for s, m, sec, n in self.rows
            if (state is _ANY or s == state)
            and (mode is _ANY or m == mode)
            and (sector is _ANY or sec == sector)
        )

    @property
    def sectors(self) -> list:
        present = {sec for _s, _m, sec, _n in self.rows}
        ordered = [s for s in Sector if s in present]
        return ordered + ([None] if None in present else [])


def registration_counts(session: Session, event: Event) -> RegistrationCounts:
    """Registrations of the event by state, attendance mode and sector: one grouped query."""
    rows = session.execute(
        sa.select(Registration.state, Registration.attendance_mode, Person.sector, sa.func.count())
        .join(Person, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id)
        .group_by(Registration.state, Registration.attendance_mode, Person.sector)
    ).all()
    return RegistrationCounts(rows=[tuple(r) for r in rows])


def rows_of_person(session: Session, model, person: Person) -> list[tuple]:
    """A person's rows of a table kept per registration (one with ``registration_id``, such as
    a plugin's), each with its event's slug, oldest first: for the personal-data download."""
    return session.execute(
        sa.select(model, Event.slug)
        .join(Registration, model.registration_id == Registration.id)
        .join(Event, Registration.event_id == Event.id)
        .where(Registration.person_id == person.id)
        .order_by(model.id)
    ).all()


# -- lists the organiser's pages read ---------------------------------------------------------


def roster_rows(session: Session, event: Event) -> list[Registration]:
    """The printed on-site list of the event (``roster``), loaded."""
    return list(session.scalars(roster(event)).unique())


def online_count(session: Session, event: Event) -> int:
    """Registrations attending online that are on the lists (confirmed, attended or unpaid)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(
                Registration.event_id == event.id,
                Registration.attendance_mode == AttendanceMode.online,
                Registration.state.in_(LIST_STATES),
            )
        )
        or 0
    )


def checkin_matches(session: Session, event: Event, q: str, limit: int = 30) -> list[Registration]:
    """Registrations of the event a check-in search finds (those that may come in)."""
    stmt = organiser_list(event, q=q).where(Registration.state.in_(LIST_STATES))
    return list(session.scalars(stmt.limit(limit)).unique())


def people_to_add(session: Session, user, q: str, limit: int = 20) -> list[Person]:
    """People an organiser may add to an event: matching ``q``, not anonymised, and visible
    to them (their series' people, or the one whose complete email was typed)."""
    from portal import people

    return list(
        session.scalars(
            sa.select(Person)
            .where(person_matches(q), Person.anonymised_at.is_(None), people.findable(user, q))
            # By reading, sorted after the search: the matches of a name are all of one
            # reading, so walking the people's reading index (ix_people_reading) to them
            # would read everyone before it. COALESCE (the column is never NULL) keeps
            # PostgreSQL on the trigram index and a sort of the matches.
            .order_by(
                sa.func.coalesce(Person.family_name_kana, ""), Person.romanized_name, Person.id
            )
            .limit(limit)
        )
    )


def rows_of(session: Session, stmt: sa.Select):
    """The registrations of a list statement (``organiser_list`` with ``yield_per``), read as
    they are used (a streamed export)."""
    return session.scalars(stmt)
