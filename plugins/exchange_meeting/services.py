"""The exchange meeting (意見交換会): settings, places, its own waiting list, joining and leaving.

Rules (one place for them):

- A registration *wants* the exchange meeting when its answer ``exchange_meeting`` is true
  and its attendance mode may join (online participants only when the setting
  ``online_may_join`` is on).
- It has a sign-up while it holds a seat at the meeting (pending payment, confirmed,
  attended): a place when the capacity allows (``capacity`` 0 = unlimited), else the exchange
  meeting's own waiting list, first come, first served.
- When the registration is cancelled, moves to the meeting's waiting list, switches to a mode
  that may not join, or the person leaves, the sign-up is cancelled and a freed place goes to
  the first person waiting, who is emailed in their language.
- Every capacity check runs under the registration core's per-event lock
  (``portal.registration.services.lock_event``): the ``registration_changed`` hook is called
  inside the core's functions, which hold it; ``join``, ``leave`` and ``promote_waiting`` take
  it themselves. So concurrent sign-ups never exceed the capacity.
- Money: the exchange meeting's price line belongs to a registration while the person has a
  place (before a sign-up exists: while places are left). The core's ``reprice`` updates the
  lines of registrations not paid yet; a place obtained after the registration was confirmed
  is paid at the reception (the organisers' list and the reception list show it).

Nothing here commits: the caller (view, CLI, the core's transaction) commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState
from portal import audit, plugins
from portal.accounts.models import Person
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import AttendanceMode, Event, EventStatus
from portal.i18n import LANGUAGES, BilingualText, to_minor
from portal.links import external_url
from portal.mail.services import queue_email
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState
from portal.registration.queries import rows_of_person
from portal.text import truthy

PLUGIN = "exchange_meeting"
FIELD = "exchange_meeting"  # the answer's key in Registration.answers
LINE_CODE = "exchange_meeting"  # the price line's code
HOLDING = (
    RegistrationState.pending_payment,
    RegistrationState.confirmed,
    RegistrationState.attended,
)
CHANGEABLE = (
    RegistrationState.pending_payment,
    RegistrationState.confirmed,
    RegistrationState.waitlisted,
)

STATE_LABELS = {
    SignupState.confirmed: _l("Place confirmed"),
    SignupState.waitlisted: _l("Waiting list"),
    SignupState.cancelled: _l("Not taking part"),
}


class ExchangeMeetingError(UserError):
    """A refused change; ``message`` is translated."""


# -- settings --------------------------------------------------------------------------------


def _whole(value) -> int:
    """A setting read as a whole number of zero or more (anything else counts as 0)."""
    try:
        number = int(str(value).strip().replace(",", ""))
    except (TypeError, ValueError):
        return 0
    return max(0, number)


@dataclass(frozen=True)
class MeetingSettings:
    """The exchange meeting of one event, as the organiser set it up."""

    capacity: int | None  # None: no limit
    price_minor: int
    currency: str
    online_may_join: bool
    venue: BilingualText
    time: BilingualText

    def may_join(self, mode) -> bool:
        return str(getattr(mode, "value", mode)) == AttendanceMode.onsite or self.online_may_join


def meeting_settings(event: Event) -> MeetingSettings:
    raw = plugins.settings(event, PLUGIN)
    currency = event.series.currency
    capacity = _whole(raw.get("capacity"))
    return MeetingSettings(
        capacity=capacity or None,
        price_minor=to_minor(_whole(raw.get("price")), currency),
        currency=currency,
        online_may_join=truthy(raw.get("online_may_join")),
        venue=BilingualText(ja=raw.get("venue_ja") or "", en=raw.get("venue_en") or ""),
        time=BilingualText(ja=raw.get("time_ja") or "", en=raw.get("time_en") or ""),
    )


def modes_that_may_join(event: Event, st: MeetingSettings) -> list[AttendanceMode]:
    return [m for m in event.attendance_modes if st.may_join(m)]


def wants(registration: Registration, st: MeetingSettings) -> bool:
    answer = (registration.answers or {}).get(FIELD)
    return truthy(answer) and st.may_join(registration.attendance_mode)


# -- queries ---------------------------------------------------------------------------------


def counts(session: Session, event: Event) -> dict[SignupState, int]:
    """Sign-ups of the event by state: one grouped query."""
    rows = session.execute(
        sa.select(ExchangeMeetingSignup.state, sa.func.count())
        .where(ExchangeMeetingSignup.event_id == event.id)
        .group_by(ExchangeMeetingSignup.state)
    ).all()
    found = {SignupState(state): n for state, n in rows}
    return {state: found.get(state, 0) for state in SignupState}


_TAKEN: list = []


def taken(session: Session, event: Event) -> int:
    """Places taken (the event page's places left): the statement is built once."""
    if not _TAKEN:
        _TAKEN.append(
            sa.select(sa.func.count())
            .select_from(ExchangeMeetingSignup)
            .where(
                ExchangeMeetingSignup.event_id == sa.bindparam("event_id"),
                ExchangeMeetingSignup.state == SignupState.confirmed,
            )
        )
    return session.scalar(_TAKEN[0], {"event_id": event.id}) or 0


def places_left(session: Session, event: Event, st: MeetingSettings) -> int | None:
    """Free places (None: no limit)."""
    if st.capacity is None:
        return None
    return max(0, st.capacity - taken(session, event))


def signup_for(session: Session, registration_id: int | None) -> ExchangeMeetingSignup | None:
    if registration_id is None:
        return None
    return session.scalar(
        sa.select(ExchangeMeetingSignup).where(
            ExchangeMeetingSignup.registration_id == registration_id
        )
    )


def positions(session: Session, event: Event, signup_ids) -> dict[int, int]:
    """Waiting-list positions (1 = next) of the given sign-ups, in one query."""
    ids = [i for i in signup_ids if i is not None]
    if not ids:
        return {}
    position = (
        sa.func.row_number()
        .over(order_by=(ExchangeMeetingSignup.waitlisted_at, ExchangeMeetingSignup.id))
        .label("position")
    )
    queue = (
        sa.select(ExchangeMeetingSignup.id, position)
        .where(
            ExchangeMeetingSignup.event_id == event.id,
            ExchangeMeetingSignup.state == SignupState.waitlisted,
        )
        .subquery()
    )
    rows = session.execute(sa.select(queue.c.id, queue.c.position).where(queue.c.id.in_(ids)))
    return {signup_id: pos for signup_id, pos in rows}


def position(session: Session, signup: ExchangeMeetingSignup | None) -> int | None:
    if signup is None or signup.state != SignupState.waitlisted:
        return None
    return positions(session, signup.registration.event, [signup.id]).get(signup.id)


def paid_with_registration(registration: Registration) -> bool:
    return any(line.get("code") == LINE_CODE for line in registration.price_lines or [])


def fee_at_reception(registration: Registration, st: MeetingSettings) -> int:
    """What a person with a place pays at the reception (a place obtained after paying)."""
    if st.price_minor <= 0 or paid_with_registration(registration):
        return 0
    return st.price_minor


def predicted_place(session: Session, registration: Registration, st: MeetingSettings) -> bool:
    """Whether the registration has (or, without a sign-up yet, would get) a place."""
    signup = signup_for(session, registration.id)
    if signup is not None and signup.state != SignupState.cancelled:
        return signup.state == SignupState.confirmed
    left = places_left(session, registration.event, st)
    return left is None or left > 0


_STATE_ORDER = sa.case(
    (ExchangeMeetingSignup.state == SignupState.confirmed, 0),
    (ExchangeMeetingSignup.state == SignupState.waitlisted, 1),
    else_=2,
)


def participants(event: Event, state: str = "") -> sa.Select:
    """Sign-ups of an event for the organiser (all but cancelled unless asked), people loaded:
    places first (by kana), then the waiting list in its order."""
    stmt = (
        sa.select(ExchangeMeetingSignup)
        .join(Registration, ExchangeMeetingSignup.registration_id == Registration.id)
        .join(Person, Registration.person_id == Person.id)
        .where(ExchangeMeetingSignup.event_id == event.id)
        .options(joinedload(ExchangeMeetingSignup.registration).joinedload(Registration.person))
    )
    if state in {s.value for s in SignupState}:
        stmt = stmt.where(ExchangeMeetingSignup.state == SignupState(state))
    else:
        stmt = stmt.where(ExchangeMeetingSignup.state != SignupState.cancelled)
    return stmt.order_by(
        _STATE_ORDER,
        ExchangeMeetingSignup.waitlisted_at,
        Person.family_name_kana,
        Person.given_name_kana,
        Person.romanized_name,
        ExchangeMeetingSignup.id,
    )


def participant_rows(session: Session, event: Event) -> list[ExchangeMeetingSignup]:
    """Every sign-up of the organiser's list (``participants``), loaded: the CSV export."""
    return list(session.scalars(participants(event)).unique())


def roster_rows(session: Session, event: Event) -> list:
    """The printed list of the exchange meeting (``roster``), loaded."""
    return list(session.scalars(roster(event)).unique())


def roster(event: Event) -> sa.Select:
    """The reception's check-in list: everyone with a place, by kana / romanised name."""
    return participants(event, SignupState.confirmed.value)


def mine(
    session: Session, event: Event, user
) -> tuple[Registration | None, ExchangeMeetingSignup | None]:
    """The user's registration for the event and its sign-up, in one query."""
    if not getattr(user, "is_authenticated", False):
        return None, None
    row = session.execute(
        sa.select(Registration, ExchangeMeetingSignup)
        .outerjoin(ExchangeMeetingSignup, ExchangeMeetingSignup.registration_id == Registration.id)
        .where(Registration.event_id == event.id, Registration.person_id == user.person_id)
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


# -- emails ----------------------------------------------------------------------------------


def _email(session: Session, registration: Registration, template: str, **context) -> None:
    person = registration.person
    if person is None or not person.email:
        return
    lang = person.preferred_language if person.preferred_language in LANGUAGES else "ja"
    queue_email(
        session,
        person.email,
        f"exchange_meeting/{template}",
        lang,
        registration=registration,
        event=registration.event,
        person=person,
        url=external_url("registration.my_registration", lang_code=lang, reg_id=registration.id),
        **context,
    )


# -- state changes ---------------------------------------------------------------------------


def _promote(
    session: Session, event: Event, st: MeetingSettings, actor, now: datetime
) -> list[ExchangeMeetingSignup]:
    """Free places go to the first people waiting (the caller holds the event's lock)."""
    left = places_left(session, event, st)
    if left == 0:
        return []
    stmt = (
        sa.select(ExchangeMeetingSignup)
        .join(Registration, ExchangeMeetingSignup.registration_id == Registration.id)
        .where(
            ExchangeMeetingSignup.event_id == event.id,
            ExchangeMeetingSignup.state == SignupState.waitlisted,
            Registration.state.in_(HOLDING),
        )
        .order_by(ExchangeMeetingSignup.waitlisted_at, ExchangeMeetingSignup.id)
        .options(joinedload(ExchangeMeetingSignup.registration).joinedload(Registration.person))
        .execution_options(populate_existing=True)
    )
    if left is not None:
        stmt = stmt.limit(left)
    promoted = list(session.scalars(stmt).unique())
    for signup in promoted:
        signup.state = SignupState.confirmed
        signup.waitlisted_at = None
        session.flush()
        audit.record(
            session,
            actor,
            "exchange_meeting_signup",
            signup.id,
            "promoted",
            registration_id=signup.registration_id,
        )
        registration = signup.registration
        registrations.reprice(
            session, registration, actor=actor, reason="exchange meeting place", now=now
        )
        _email(
            session,
            registration,
            "promoted",
            st=st,
            at_reception=fee_at_reception(registration, st),
        )
    return promoted


def _take(
    session: Session,
    registration: Registration,
    signup: ExchangeMeetingSignup | None,
    st: MeetingSettings,
    actor,
    now: datetime,
) -> ExchangeMeetingSignup:
    """A place if one is free, else the waiting list (those already waiting come first)."""
    event = registration.event
    _promote(session, event, st, actor, now)
    left = places_left(session, event, st)
    state = SignupState.confirmed if left is None or left > 0 else SignupState.waitlisted
    if signup is None:
        signup = ExchangeMeetingSignup(
            registration_id=registration.id, event_id=registration.event_id, state=state
        )
        session.add(signup)
    signup.state = state
    signup.waitlisted_at = now if state == SignupState.waitlisted else None
    session.flush()
    audit.record(
        session,
        actor,
        "exchange_meeting_signup",
        signup.id,
        "joined" if state == SignupState.confirmed else "waitlisted",
        registration_id=registration.id,
    )
    if state == SignupState.waitlisted:
        _email(
            session,
            registration,
            "waitlisted",
            st=st,
            position=positions(session, event, [signup.id]).get(signup.id),
        )
    return signup


def _release(
    session: Session,
    signup: ExchangeMeetingSignup,
    st: MeetingSettings,
    actor,
    now: datetime,
    reason: str,
) -> None:
    was = signup.state
    signup.state = SignupState.cancelled
    signup.waitlisted_at = None
    session.flush()
    audit.record(
        session,
        actor,
        "exchange_meeting_signup",
        signup.id,
        "cancelled",
        old=was.value,
        registration_id=signup.registration_id,
        reason=reason,
    )
    if was == SignupState.confirmed:
        _promote(session, signup.registration.event, st, actor, now)


def sync(
    session: Session, registration: Registration, *, actor=None, now: datetime | None = None
) -> ExchangeMeetingSignup | None:
    """Bring the registration's sign-up in line with its state, mode and answer (the
    ``registration_changed`` hook; the core holds the event's lock), then its price lines."""
    now = now or utcnow()
    if registration.id is None:
        return None
    st = meeting_settings(registration.event)
    signup = signup_for(session, registration.id)
    if wants(registration, st) and registration.state in HOLDING:
        if signup is None or signup.state == SignupState.cancelled:
            signup = _take(session, registration, signup, st, actor, now)
    elif signup is not None and signup.state != SignupState.cancelled:
        if registration.state not in HOLDING:
            reason = f"registration {registration.state.value}"
        elif not st.may_join(registration.attendance_mode):
            reason = f"attending {registration.attendance_mode.value}"
        else:
            reason = "left"
        _release(session, signup, st, actor, now, reason)
    registrations.reprice(session, registration, actor=actor, reason="exchange meeting", now=now)
    return signup


def _check_changeable(registration: Registration, now: datetime) -> None:
    event = registration.event
    if event.status == EventStatus.cancelled:
        raise ExchangeMeetingError(_l("This event has been cancelled."))
    if event.starts_at <= now:
        raise ExchangeMeetingError(
            _l("The meeting has started, so the exchange meeting can no longer be changed here.")
        )
    if registration.state not in CHANGEABLE:
        raise ExchangeMeetingError(
            _l("The exchange meeting can only be changed while your registration is active.")
        )


def join(
    session: Session, registration: Registration, *, actor, now: datetime | None = None
) -> ExchangeMeetingSignup | None:
    """The participant joins the exchange meeting: a place, or its waiting list.

    While the registration itself waits for a seat, only the wish is stored: the sign-up
    follows when a seat is given."""
    now = now or utcnow()
    registrations.lock_event(session, registration.event)
    session.refresh(registration)
    _check_changeable(registration, now)
    st = meeting_settings(registration.event)
    if not st.may_join(registration.attendance_mode):
        raise ExchangeMeetingError(_l("The exchange meeting is for participants on site."))
    signup = signup_for(session, registration.id)
    if wants(registration, st) and (
        registration.state not in HOLDING
        or (signup is not None and signup.state != SignupState.cancelled)
    ):
        raise ExchangeMeetingError(_l("You have already signed up for the exchange meeting."))
    registrations.reprice(
        session,
        registration,
        answers={FIELD: True},
        actor=actor,
        reason="joined the exchange meeting",
        now=now,
    )
    return sync(session, registration, actor=actor, now=now)


def leave(
    session: Session, registration: Registration, *, actor, now: datetime | None = None
) -> None:
    """The participant leaves the exchange meeting (or its waiting list); a freed place goes
    to the first person waiting."""
    now = now or utcnow()
    registrations.lock_event(session, registration.event)
    session.refresh(registration)
    _check_changeable(registration, now)
    if not truthy((registration.answers or {}).get(FIELD)):
        raise ExchangeMeetingError(_l("You are not signed up for the exchange meeting."))
    registrations.reprice(
        session,
        registration,
        answers={FIELD: False},
        actor=actor,
        reason="left the exchange meeting",
        now=now,
    )
    sync(session, registration, actor=actor, now=now)


def promote_waiting(
    session: Session, event: Event, *, actor, now: datetime | None = None
) -> list[ExchangeMeetingSignup]:
    """Give free places to the people waiting (after an organiser raised the capacity)."""
    now = now or utcnow()
    registrations.lock_event(session, event)
    return _promote(session, event, meeting_settings(event), actor, now)


# -- personal data ---------------------------------------------------------------------------


def personal_data(session: Session, person: Person) -> dict:
    rows = rows_of_person(session, ExchangeMeetingSignup, person)
    return {
        "signups": [
            {
                "event": slug,
                "state": signup.state.value,
                "created_at": signup.created_at.isoformat(),
            }
            for signup, slug in rows
        ]
    }


def confirmed_places(event: Event, registration_ids) -> dict[int, bool]:
    """Whether each registration has a confirmed place (one query); ``registration_ids`` None:
    the registrations that have one (hook ``reception_places``: tickets, check-in counts)."""
    from portal.db import db

    stmt = sa.select(ExchangeMeetingSignup.registration_id).where(
        ExchangeMeetingSignup.event_id == event.id,
        ExchangeMeetingSignup.state == SignupState.confirmed,
    )
    if registration_ids is None:
        return dict.fromkeys(db.session.scalars(stmt), True)
    ids = list(registration_ids)
    if not ids:
        return {}
    found = set(db.session.scalars(stmt.where(ExchangeMeetingSignup.registration_id.in_(ids))))
    return {rid: rid in found for rid in ids}
