"""Two phones scan the same ticket at the same moment: one green, one amber, one check-in.

Real threads, each with its own app context, session and connection, against the file-based
SQLite database or PostgreSQL (PORTAL_TEST_DATABASE_URL); also over HTTP on the live server.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from portal.accounts.models import User
from portal.audit import AuditEntry
from portal.db import db
from portal.events.models import Event
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState
from portal.tickets import services as tickets
from portal.tickets.models import CheckIn
from tests import factories as f


def _setup(app, plugin: bool = False) -> dict:
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        if plugin:
            f.enable(s, event, "exchange_meeting")
        organisers = [f.user(s, roles=(("organiser", series),)) for _ in range(2)]
        person = f.person(s)
        registration = registrations.register(
            s, event, person, mode="onsite", privacy_accepted=True
        )
        s.commit()
        return {
            "event_id": event.id,
            "slug": event.slug,
            "organiser_ids": [u.id for u in organisers],
            "organisers": organisers,
            "reg_id": registration.id,
            "token": tickets.current_ticket(s, registration).token,
        }


def _scan_together(app, data, point="event") -> list[str]:
    barrier = threading.Barrier(2)

    def phone(organiser_id):
        with app.app_context():
            s = db.session
            event = s.get(Event, data["event_id"])
            actor = s.get(User, organiser_id)
            s.commit()  # hold no lock while waiting for the other phone
            barrier.wait(timeout=30)
            result = tickets.scan(s, event, data["token"], actor=actor, point=point)
            s.commit()
            return result.colour

    with ThreadPoolExecutor(2) as pool:
        return sorted(pool.map(phone, data["organiser_ids"]))


def _assert_counted_once(app, data, point="event", times: int = 1) -> None:
    with app.app_context():
        s = db.session
        rows = s.scalars(sa.select(CheckIn).where(CheckIn.point == point)).all()
        assert len(rows) == 1
        assert rows[0].checked_in_by_id in data["organiser_ids"]
        action = "checked_in" if point == "event" else "reception_checked_in"
        audits = s.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.subject_id == data["reg_id"], AuditEntry.action == action)
        )
        assert audits == times
        if point == "event":
            assert s.get(Registration, data["reg_id"]).state == RegistrationState.attended


def test_two_phones_scan_at_once(app):
    data = _setup(app)
    for times in (1, 2, 3):  # the race is short: try it a few times on fresh check-ins
        assert _scan_together(app, data) == ["amber", "green"]
        _assert_counted_once(app, data, times=times)
        with app.app_context():
            s = db.session
            registration = s.get(Registration, data["reg_id"])
            registrations.change_state_by_organiser(
                s, registration, "confirmed", actor=None, reason="test"
            )
            s.commit()


def test_two_phones_at_the_exchange_meeting(app):
    from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState

    data = _setup(app, plugin=True)
    with app.app_context():
        db.session.add(
            ExchangeMeetingSignup(
                registration_id=data["reg_id"],
                event_id=data["event_id"],
                state=SignupState.confirmed,
            )
        )
        db.session.commit()
    assert _scan_together(app, data, "reception") == ["amber", "green"]
    _assert_counted_once(app, data, "reception")


def test_two_requests_at_once_over_http(live_server):
    data = _setup(live_server.app)
    sessions = []
    for organiser in data["organisers"]:
        http = requests.Session()
        # Log in through the form, as a phone would.
        page = http.get(f"{live_server.url}/en/account/login")
        token = page.text.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
        r = http.post(
            f"{live_server.url}/en/account/login",
            data={"csrf_token": token, "email": organiser.email, "password": f.PASSWORD},
        )
        assert r.status_code == 200 and "Log out" in r.text
        scanner = http.get(f"{live_server.url}/en/organiser/events/{data['slug']}/check-in/")
        csrf = scanner.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        sessions.append((http, csrf))
    barrier = threading.Barrier(2)

    def phone(pair):
        http, csrf = pair
        barrier.wait(timeout=30)
        r = http.post(
            f"{live_server.url}/en/organiser/events/{data['slug']}/check-in/scan",
            data={"token": data["token"]},
            headers={"X-CSRFToken": csrf},
        )
        assert r.status_code == 200, r.text
        return r.json()["colour"]

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(phone, sessions)) == ["amber", "green"]
    _assert_counted_once(live_server.app, data)
