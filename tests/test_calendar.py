"""The calendar plugin: the .ics file in the event's own time zone, and 404 when it should."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import icalendar
import pytest

from portal.accounts.models import User
from portal.db import db
from portal.events.models import EventStatus
from portal.i18n import BilingualText
from tests import factories as f


@contextmanager
def database(app):
    with app.app_context():
        yield db.session


@pytest.fixture
def events(app):
    with database(app) as s:
        study = f.series(s, "study_group", slug="study")
        workshop = f.series(s, "workshop", slug="workshop")
        meeting = f.event(
            s,
            study,
            slug="meeting-94",
            title=BilingualText(
                ja="第94回 レアメタル研究会", en="Rare Metal Study Group, meeting 94"
            ),
            starts_at=f.at(2026, 11, 6, 5, 30),  # 14:30 in Tokyo
            ends_at=f.at(2026, 11, 6, 9, 0),  # 18:00 in Tokyo
        )
        ws = f.event(
            s,
            workshop,
            slug="workshop-2027",
            title=BilingualText(
                ja="リアクティブメタル・ワークショップ", en="Reactive Metal Workshop 2027"
            ),
            starts_at=f.at(2027, 6, 14, 13, 0),  # 09:00 in Boston (EDT, UTC-4)
            ends_at=f.at(2027, 6, 14, 21, 30),  # 17:30 in Boston
        )
        draft = f.event(s, study, slug="meeting-95", status=EventStatus.draft)
        f.enable(s, meeting, "calendar")
        f.enable(s, ws, "calendar")
        f.enable(s, draft, "calendar")
        organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
        s.commit()
        return {"organiser": organiser.id}


def parse(response) -> tuple[icalendar.Calendar, icalendar.Event]:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    vevents = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert len(vevents) == 1
    return calendar, vevents[0]


def test_study_group_ics_is_in_tokyo_time(client, events):
    calendar, vevent = parse(client.get("/ja/events/meeting-94/calendar.ics"))
    start = vevent["DTSTART"]
    assert start.params["TZID"] == "Asia/Tokyo"
    assert start.dt.replace(tzinfo=None) == datetime(2026, 11, 6, 14, 30)
    assert start.dt.utcoffset() == timedelta(hours=9)
    end = vevent["DTEND"]
    assert end.params["TZID"] == "Asia/Tokyo"
    assert end.dt.replace(tzinfo=None) == datetime(2026, 11, 6, 18, 0)
    zones = [c["TZID"] for c in calendar.walk() if c.name == "VTIMEZONE"]
    assert zones == ["Asia/Tokyo"]
    assert str(vevent["SUMMARY"]) == "第94回 レアメタル研究会"
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert "/ja/events/meeting-94/" in str(vevent["URL"])


def test_workshop_ics_is_in_new_york_time_and_english(client, events):
    calendar, vevent = parse(client.get("/en/events/workshop-2027/calendar.ics"))
    start = vevent["DTSTART"]
    assert start.params["TZID"] == "America/New_York"
    assert start.dt.replace(tzinfo=None) == datetime(2027, 6, 14, 9, 0)
    assert start.dt.utcoffset() == timedelta(hours=-4)
    zones = [c["TZID"] for c in calendar.walk() if c.name == "VTIMEZONE"]
    assert zones == ["America/New_York"]
    assert str(vevent["SUMMARY"]) == "Reactive Metal Workshop 2027"
    ja = parse(client.get("/ja/events/workshop-2027/calendar.ics"))[1]
    assert str(ja["SUMMARY"]) == "リアクティブメタル・ワークショップ"


def test_cancelled_event_ics_says_cancelled(app, client, events):
    with database(app) as s:
        from portal.events.models import Event

        event = s.query(Event).filter_by(slug="meeting-94").one()
        event.status = EventStatus.cancelled
        s.commit()
    vevent = parse(client.get("/en/events/meeting-94/calendar.ics"))[1]
    assert str(vevent["STATUS"]) == "CANCELLED"


def test_ics_is_404_when_calendar_is_off(app, client, events):
    with database(app) as s:
        from portal.events.models import Event, EventPlugin

        event = s.query(Event).filter_by(slug="meeting-94").one()
        s.query(EventPlugin).filter_by(event_id=event.id, plugin="calendar").one().enabled = False
        s.commit()
    assert client.get("/en/events/meeting-94/calendar.ics").status_code == 404
    assert "Add to calendar" not in client.get("/en/events/meeting-94/").text
    assert client.get("/en/events/workshop-2027/calendar.ics").status_code == 200


def test_draft_ics_is_404_for_visitors_but_not_for_its_organiser(client, app, events):
    assert client.get("/en/events/meeting-95/calendar.ics").status_code == 404
    assert client.get("/en/events/no-such-event/calendar.ics").status_code == 404
    with database(app) as s:
        stamp = s.get(User, events["organiser"]).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
    assert client.get("/en/events/meeting-95/calendar.ics").status_code == 200
