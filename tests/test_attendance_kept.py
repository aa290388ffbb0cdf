"""The attendance statistics' tables and chart are kept by content version (portal.pagecache
``kept_part``, ``FRAGMENT_CACHE_SECONDS``) and are never stale: figures saved, a registration
of a past meeting, an ended meeting, a change made through another worker."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from plugins.attendance.models import MeetingAttendance
from portal.db import db, utcnow
from portal.events.models import Event, EventStatus
from tests import factories as f
from tests.conftest import get_with_statements

pytest.importorskip("portal.registration.models")
from portal.registration.models import Registration  # noqa: E402


@pytest.fixture
def kept_app(kept_workers):
    return kept_workers()


@pytest.fixture
def other_worker(kept_workers):
    return kept_workers()


def _log_in(client, user_id: str) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


def _past_meeting(app, *, ends_in: timedelta | None = None) -> dict:
    """A series with the attendance plugin, its organiser, and a closed meeting (number 7)
    with two people who attended; the meeting ended two days ago or ends in ``ends_in``."""
    with app.app_context():
        session = db.session
        series = f.series(session)
        f.enable_for_series(session, series, "attendance")
        organiser = f.user(session, roles=(("organiser", series),))
        starts = utcnow() - timedelta(days=2) if ends_in is None else utcnow() - timedelta(hours=1)
        event = f.event(session, series, number=7, status=EventStatus.closed, starts_at=starts)
        if ends_in is not None:
            event.ends_at = utcnow() + ends_in
        for _ in range(2):
            person = f.person(session, sector="company")
            session.add(
                Registration(
                    event_id=event.id,
                    person_id=person.id,
                    attendance_mode="onsite",
                    state="attended",
                    currency="JPY",
                )
            )
        session.commit()
        return {
            "user": organiser.get_id(),
            "url": f"/en/series/{series.slug}/statistics",
            "event_id": event.id,
        }


def _statements(app, client, url):
    response, seen = get_with_statements(app, client, url)
    assert response.status_code == 200
    return response.text, len(seen)


def _person(app) -> int:
    with app.app_context():
        person = f.person(db.session, sector="university")
        db.session.commit()
        return person.id


def _attended(app, event_id: int, person_id: int) -> None:
    """Only the meeting's own rows change (its version and ``EVENTS``, not the global one)."""
    with app.app_context():
        db.session.add(
            Registration(
                event_id=event_id,
                person_id=person_id,
                attendance_mode="online",
                state="attended",
                currency="JPY",
            )
        )
        db.session.commit()


def test_the_figures_are_kept_and_a_registration_shows_at_once(kept_app):
    m = _past_meeting(kept_app)
    person_id = _person(kept_app)
    client = kept_app.test_client()
    _log_in(client, m["user"])

    first, rendered = _statements(kept_app, client, m["url"])
    second, kept = _statements(kept_app, client, m["url"])
    assert re.sub(r"<input[^>]*csrf_token[^>]*>", "", second) == re.sub(
        r"<input[^>]*csrf_token[^>]*>", "", first
    )
    assert "1 meeting held" in first
    assert kept < rendered  # the statistics' statements did not run again

    _attended(kept_app, m["event_id"], person_id)  # the meeting's live figures: 3 participants
    after, rendered_again = _statements(kept_app, client, m["url"])
    assert after != first
    assert rendered_again == rendered
    assert '<td class="num">3</td>' in after


def test_saved_figures_show_on_another_worker_at_once(kept_app, other_worker):
    m = _past_meeting(kept_app)
    client = kept_app.test_client()
    _log_in(client, m["user"])
    before = client.get(m["url"]).text
    assert '<td class="num">40</td>' not in before

    with other_worker.app_context():  # another worker saves the counted figures
        db.session.add(
            MeetingAttendance(event_id=m["event_id"], registered=50, participants=40, company=40)
        )
        db.session.commit()

    after = client.get(m["url"]).text
    assert '<td class="num">40</td>' in after


def test_a_meeting_that_ends_is_counted_without_any_change(kept_app):
    m = _past_meeting(kept_app, ends_in=timedelta(seconds=2))
    client = kept_app.test_client()
    _log_in(client, m["user"])
    before = client.get(m["url"]).text
    assert "No attendance figures have been recorded" in before

    time.sleep(2.5)
    after = client.get(m["url"]).text
    assert "1 meeting held" in after


def test_renaming_a_meeting_shows_at_once(kept_app):
    m = _past_meeting(kept_app)
    client = kept_app.test_client()
    _log_in(client, m["user"])
    client.get(m["url"])
    with kept_app.app_context():
        db.session.get(Event, m["event_id"]).number = 8
        db.session.commit()
    assert "Meeting 8" in client.get(m["url"]).text


def test_off_in_tests_unless_set(app):
    assert app.config["FRAGMENT_CACHE_SECONDS"] == 0
