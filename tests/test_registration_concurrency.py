"""A rush, with real threads: each thread has its own app context, session and connection,
against the file-based SQLite database (or PostgreSQL through PORTAL_TEST_DATABASE_URL)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from portal.accounts.models import Person
from portal.db import db
from portal.events.models import Event, EventFormat
from portal.registration import services
from portal.registration.models import Registration, RegistrationState
from tests import factories as f

S = RegistrationState


def run_threads(app, jobs) -> tuple[list, list]:
    """Run each job(session) in its own thread and app context, all released at once."""
    barrier = threading.Barrier(len(jobs))
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def worker(job):
        try:
            with app.app_context():
                session = db.session
                prepared = job.prepare(session)
                session.commit()  # hold no lock while waiting at the barrier
                barrier.wait(timeout=60)
                try:
                    outcome = job.run(session, *prepared)
                    session.commit()
                except services.RegistrationError as refused:
                    session.rollback()
                    outcome = refused
                with lock:
                    results.append(outcome)
        except Exception as exc:  # noqa: BLE001 - every unexpected error is counted
            with lock:
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results, errors


class Register:
    def __init__(self, event_id, person_id, mode="onsite"):
        self.event_id, self.person_id, self.mode = event_id, person_id, mode

    def prepare(self, session):
        return session.get(Event, self.event_id), session.get(Person, self.person_id)

    def run(self, session, event, person):
        return services.register(
            session, event, person, mode=self.mode, privacy_accepted=True
        ).state


class Cancel:
    def __init__(self, reg_id):
        self.reg_id = reg_id

    def prepare(self, session):
        registration = session.get(Registration, self.reg_id)
        registration.event  # noqa: B018 - load before the rush
        registration.person  # noqa: B018
        return (registration,)

    def run(self, session, registration):
        return services.cancel(session, registration, actor=None).state


class SwitchMode(Cancel):
    def __init__(self, reg_id, mode):
        super().__init__(reg_id)
        self.mode = mode

    def run(self, session, registration):
        return services.switch_mode(session, registration, self.mode, actor=None).state


def seat_holders(session, event_id) -> dict:
    rows = session.execute(
        sa.select(Registration.attendance_mode, Registration.state, sa.func.count())
        .where(Registration.event_id == event_id)
        .group_by(Registration.attendance_mode, Registration.state)
    ).all()
    return {(mode.value, state.value): n for mode, state, n in rows}


def test_rush_twenty_people_ten_places(app):
    with app.app_context():
        event = f.event(db.session, format=EventFormat.onsite, capacity_onsite=10)
        people = [f.person(db.session) for _ in range(20)]
        db.session.commit()
        event_id, person_ids = event.id, [p.id for p in people]

    results, errors = run_threads(app, [Register(event_id, pid) for pid in person_ids])

    assert errors == []
    assert sorted(results) == sorted([S.confirmed] * 10 + [S.waitlisted] * 10)
    with app.app_context():
        assert seat_holders(db.session, event_id) == {
            ("onsite", "confirmed"): 10,
            ("onsite", "waitlisted"): 10,
        }
        waiting = db.session.scalars(
            sa.select(Registration).where(Registration.state == S.waitlisted)
        ).all()
        positions = services.waitlist_positions(db.session, waiting)
        assert sorted(positions.values()) == list(range(1, 11))


def test_double_submit_from_many_threads_makes_one_registration(app):
    with app.app_context():
        event = f.event(db.session, format=EventFormat.onsite, capacity_onsite=10)
        person = f.person(db.session)
        db.session.commit()
        event_id, person_id = event.id, person.id

    results, errors = run_threads(app, [Register(event_id, person_id) for _ in range(8)])

    assert errors == []
    assert [r for r in results if r == S.confirmed] == [S.confirmed]
    assert len([r for r in results if isinstance(r, services.AlreadyRegistered)]) == 7
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1


def test_concurrent_cancellations_promotions_and_switches_never_exceed_capacity(app):
    with app.app_context():
        s = db.session
        event = f.event(s, format=EventFormat.hybrid, capacity_onsite=4, capacity_online=4)
        regs = {}
        for mode in ("onsite", "online"):
            regs[mode] = [
                services.register(s, event, f.person(s), mode=mode, privacy_accepted=True)
                for _ in range(8)
            ]
        newcomers = [f.person(s) for _ in range(4)]
        s.commit()
        event_id = event.id
        assert seat_holders(s, event_id) == {
            ("onsite", "confirmed"): 4,
            ("onsite", "waitlisted"): 4,
            ("online", "confirmed"): 4,
            ("online", "waitlisted"): 4,
        }
        jobs = [
            Cancel(regs["onsite"][0].id),
            Cancel(regs["onsite"][1].id),
            Cancel(regs["online"][0].id),
            Cancel(regs["online"][1].id),
            SwitchMode(regs["online"][2].id, "onsite"),
            SwitchMode(regs["onsite"][2].id, "online"),
            SwitchMode(regs["online"][7].id, "onsite"),  # a waiting one
            Register(event_id, newcomers[0].id, "onsite"),
            Register(event_id, newcomers[1].id, "onsite"),
            Register(event_id, newcomers[2].id, "online"),
            Register(event_id, newcomers[3].id, "online"),
        ]

    results, errors = run_threads(app, jobs)

    assert errors == []
    assert len(results) == len(jobs)
    with app.app_context():
        counts = seat_holders(db.session, event_id)
        for mode in ("onsite", "online"):
            holding = counts.get((mode, "confirmed"), 0) + counts.get((mode, "pending_payment"), 0)
            # People are still waiting in both modes, so every seat is taken: no more, no less.
            assert counts.get((mode, "waitlisted"), 0) > 0
            assert holding == 4, counts
        assert counts[("onsite", "cancelled")] + counts.get(("online", "cancelled"), 0) == 4
