"""The exchange meeting under a rush, with real threads (SQLite file database, or PostgreSQL
through PORTAL_TEST_DATABASE_URL): its capacity is never exceeded, its waiting list is exact."""

from __future__ import annotations

import sqlalchemy as sa

from plugins.exchange_meeting import services as em
from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState
from portal.db import db
from portal.events.models import EventFormat
from portal.registration import services
from portal.registration.models import Registration, RegistrationState
from tests import factories as f
from tests.test_registration_concurrency import Cancel, Register, run_threads

S = RegistrationState
E = SignupState
JOIN = {"exchange_meeting": True}


class RegisterWithExchangeMeeting(Register):
    def run(self, session, event, person):
        return services.register(
            session, event, person, mode=self.mode, answers=JOIN, privacy_accepted=True
        ).state


class Join(Cancel):
    def run(self, session, registration):
        signup = em.join(session, registration, actor=None)
        return signup.state if signup else None


class Leave(Cancel):
    def run(self, session, registration):
        em.leave(session, registration, actor=None)
        return "left"


def signups(session, event_id) -> dict:
    rows = session.execute(
        sa.select(ExchangeMeetingSignup.state, sa.func.count())
        .where(ExchangeMeetingSignup.event_id == event_id)
        .group_by(ExchangeMeetingSignup.state)
    ).all()
    return {state.value: n for state, n in rows}


def test_rush_of_twelve_for_five_places(app):
    with app.app_context():
        s = db.session
        event = f.event(s, format=EventFormat.onsite, capacity_onsite=280)
        f.enable(s, event, "exchange_meeting", capacity=5, price=3000)
        people = [f.person(s) for _ in range(12)]
        s.commit()
        event_id, person_ids = event.id, [p.id for p in people]

    results, errors = run_threads(
        app, [RegisterWithExchangeMeeting(event_id, pid) for pid in person_ids]
    )

    assert errors == []
    assert len(results) == 12
    with app.app_context():
        s = db.session
        assert signups(s, event_id) == {"confirmed": 5, "waitlisted": 7}
        rows = s.execute(
            sa.select(
                ExchangeMeetingSignup.state, Registration.state, Registration.total_minor
            ).join(Registration, ExchangeMeetingSignup.registration_id == Registration.id)
        ).all()
        # A place is paid with the registration; the waiting list pays nothing (yet).
        assert sorted((a.value, b.value, t) for a, b, t in rows) == sorted(
            [("confirmed", "pending_payment", 3000)] * 5 + [("waitlisted", "confirmed", 0)] * 7
        )
        waiting = s.scalars(
            sa.select(ExchangeMeetingSignup.id).where(ExchangeMeetingSignup.state == E.waitlisted)
        ).all()
        event = s.get(Registration, s.scalar(sa.select(Registration.id))).event
        assert sorted(em.positions(s, event, waiting).values()) == list(range(1, 8))


def test_concurrent_joins_leaves_and_cancellations_keep_the_capacity(app):
    with app.app_context():
        s = db.session
        event = f.event(s, format=EventFormat.onsite, capacity_onsite=280)
        f.enable(s, event, "exchange_meeting", capacity=4)
        wanting = [
            services.register(
                s, event, f.person(s), mode="onsite", answers=JOIN, privacy_accepted=True
            )
            for _ in range(8)
        ]
        others = [
            services.register(s, event, f.person(s), mode="onsite", privacy_accepted=True)
            for _ in range(6)
        ]
        s.commit()
        event_id = event.id
        assert signups(s, event_id) == {"confirmed": 4, "waitlisted": 4}
        placed = [r for r in wanting if em.signup_for(s, r.id).state == E.confirmed]
        jobs = [
            Leave(placed[0].id),
            Leave(placed[1].id),
            Cancel(placed[2].id),
            Cancel(placed[3].id),
            *[Join(r.id) for r in others],
        ]

    results, errors = run_threads(app, jobs)

    assert errors == []
    assert len(results) == len(jobs)
    with app.app_context():
        # 8 - 4 + 6 = 10 people want it: the 4 places are all taken, 6 wait, 4 left.
        assert signups(db.session, event_id) == {
            "confirmed": 4,
            "waitlisted": 6,
            "cancelled": 4,
        }
