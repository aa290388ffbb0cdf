"""Organisers' pages kept per person by content version (portal.pagecache ``kept_for_person``,
``FRAGMENT_CACHE_SECONDS``): never stale, never another person's copy, and their forms'
CSRF tokens still work."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import User
from portal.db import db
from portal.events.models import Event, EventStatus
from tests import factories as f
from tests.conftest import get_with_statements

pytest.importorskip("portal.registration.models")
from portal.registration.models import Registration  # noqa: E402

DASHBOARD = "/en/organiser/events/meeting-94/"


@pytest.fixture
def kept_app(kept_workers):
    return kept_workers(WTF_CSRF_ENABLED=True)


@pytest.fixture
def other_worker(kept_workers):
    return kept_workers()


@pytest.fixture
def world(app):
    with app.app_context():
        s = db.session
        study = f.series(s, "study_group", slug="study")
        organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
        admin = f.user(s, email="admin@example.org", is_admin=True)
        meeting = f.event(s, study, slug="meeting-94", number=94)
        people = [f.person(s) for _ in range(2)]
        s.commit()
        return {
            "organiser": organiser.id,
            "admin": admin.id,
            "meeting": meeting.id,
            "people": [p.id for p in people],
        }


def _login(app, user_id: int):
    client = app.test_client()
    with app.app_context():
        stamp = db.session.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True
    return client


def _get(app, client, path=DASHBOARD):
    response, seen = get_with_statements(app, client, path)
    assert response.status_code == 200
    return response.text, len(seen)


def _without_tokens(text: str) -> str:
    """The page without its CSRF fields (the frame's are made anew, with their time)."""
    return re.sub(r"<input[^>]*csrf_token[^>]*>", "<csrf>", text)


def _confirmed(text: str) -> str:
    row = re.search(r'<tr data-state="confirmed">.*?</tr>', text, re.S).group(0)
    return re.search(r'<td data-mode="all">(\d+)</td>', row).group(1)


def _csrf(text: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text).group(1)


def test_the_dashboard_is_kept_and_a_registration_on_another_worker_shows_at_once(
    kept_app, other_worker, world
):
    client = _login(kept_app, world["organiser"])
    first, rendered = _get(kept_app, client)  # its forms give the session a CSRF secret
    second, kept = _get(kept_app, client)
    assert _without_tokens(second) == _without_tokens(first)
    assert kept < rendered
    assert _confirmed(first) == "0"

    with other_worker.app_context():
        db.session.add(
            Registration(
                event_id=world["meeting"],
                person_id=world["people"][0],
                attendance_mode="onsite",
                state="confirmed",
                currency="JPY",
            )
        )
        db.session.commit()

    after, _ = _get(kept_app, client)
    assert _confirmed(after) == "1"


def test_a_kept_dashboards_csrf_token_changes_the_status(kept_app, world):
    client = _login(kept_app, world["organiser"])
    client.get(DASHBOARD)
    kept, _ = _get(kept_app, client)
    response = client.post(
        "/en/organiser/events/meeting-94/status",
        data={"csrf_token": _csrf(kept), "status": "closed", "reason": ""},
    )
    assert response.status_code == 302
    with kept_app.app_context():
        assert db.session.get(Event, world["meeting"]).status == EventStatus.closed
    after, _ = _get(kept_app, client)
    assert 'id="event-status">Registration closed</span>' in after


def test_each_organiser_gets_their_own_copy(kept_app, world):
    organiser = _login(kept_app, world["organiser"])
    admin = _login(kept_app, world["admin"])
    mine, _ = _get(kept_app, organiser)
    _get(kept_app, organiser)
    theirs, _ = _get(kept_app, admin)
    assert _csrf(theirs) != _csrf(mine)
    response = admin.post(
        "/en/organiser/events/meeting-94/status",
        data={"csrf_token": _csrf(theirs), "status": "closed", "reason": ""},
    )
    assert response.status_code == 302


def test_a_plugin_switched_on_shows_at_once(kept_app, world):
    client = _login(kept_app, world["organiser"])
    before, _ = _get(kept_app, client)
    assert 'data-plugin="calendar"' in before
    response = client.post(
        "/en/organiser/events/meeting-94/plugins/calendar",
        data={"csrf_token": _csrf(before), "enabled": "1"},
    )
    assert response.status_code == 302
    after, _ = _get(kept_app, client)
    card = re.search(r'<li class="card" data-plugin="calendar">.*?</li>', after, re.S).group(0)
    assert "badge-on" in card


def test_a_rejected_status_change_shows_the_form_again_not_the_kept_page(kept_app, world):
    client = _login(kept_app, world["organiser"])
    page, _ = _get(kept_app, client)
    _get(kept_app, client)
    response = client.post(
        "/en/organiser/events/meeting-94/status",
        data={"csrf_token": _csrf(page), "status": "draft", "reason": ""},
    )
    assert response.status_code == 400
    assert "cannot move from" in response.text


def _register(app, world, person: int, state: str = "confirmed") -> None:
    with app.app_context():
        db.session.add(
            Registration(
                event_id=world["meeting"],
                person_id=world["people"][person],
                attendance_mode="onsite",
                state=state,
                currency="JPY",
            )
        )
        db.session.commit()


def test_the_registration_list_is_kept_per_filter_and_shows_a_registration_at_once(
    kept_app, other_worker, world
):
    client = _login(kept_app, world["organiser"])
    everyone = "/en/organiser/events/meeting-94/registrations/"
    waiting = everyone + "?state=waitlisted"
    _register(kept_app, world, 0)
    client.get(everyone)  # the page's frame gives the session its CSRF secret
    first, rendered = _get(kept_app, client, everyone)
    again, kept = _get(kept_app, client, everyone)
    assert _without_tokens(again) == _without_tokens(first) and kept < rendered
    assert "1 registrations" in first
    assert "0 registrations" in _get(kept_app, client, waiting)[0]

    _register(other_worker, world, 1, state="waitlisted")
    assert "2 registrations" in _get(kept_app, client, everyone)[0]
    assert "1 registrations" in _get(kept_app, client, waiting)[0]
