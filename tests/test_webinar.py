"""webinar: who sees the link and passcode, and when; the reminder of the day before."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from plugins.webinar import services as wb
from plugins.webinar.models import WebinarReminder
from portal import plugins
from portal.accounts.models import User
from portal.db import db, utcnow
from portal.events.models import Event, EventFormat
from portal.i18n import format_date, format_time
from portal.mail.models import OutboxEmail
from portal.registration import services
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f

S = RegistrationState
URL = "https://zoom.example/j/8123456789"
PASSCODE = "rm-8842"


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def category(session, event, code="free", price=0) -> FeeCategory:
    found = session.scalar(
        sa.select(FeeCategory).where(FeeCategory.event_id == event.id, FeeCategory.code == code)
    )
    if found is None:
        found = FeeCategory(
            event_id=event.id, code=code, name={"ja": code, "en": code}, price_minor=price
        )
        session.add(found)
        session.flush()
    return found


def paid_category(session, event) -> FeeCategory:
    return category(session, event, "paid", 5000)


def register(session, event, person, mode, fee_category=None) -> Registration:
    fee_category = fee_category or category(session, event)
    return services.register(
        session, event, person, mode=mode, fee_category=fee_category.id, privacy_accepted=True
    )


@pytest.fixture
def world(app):
    """A hybrid meeting starting in 40 minutes with the webinar on (link shown 30 minutes before
    the start, i.e. in 10 minutes), and one person of each kind."""
    with app.app_context():
        s = db.session
        series = f.series(s)
        start = utcnow().replace(microsecond=0) + timedelta(minutes=40)
        event = f.event(s, series, starts_at=start, format=EventFormat.hybrid)
        f.enable(s, event, "webinar", url=URL, passcode=PASSCODE, minutes_before=30)
        people = {}
        for kind in ("online", "onsite", "pending", "waiting", "cancelled", "nobody"):
            people[kind] = f.user(s)
        organiser = f.user(s, roles=(("organiser", series),))
        other_organiser = f.user(s, roles=(("organiser", f.series(s)),))
        register(s, event, people["online"].person, "online")
        register(s, event, people["onsite"].person, "onsite")
        register(s, event, people["pending"].person, "online", fee_category=paid_category(s, event))
        event.capacity_online = 1
        register(s, event, people["waiting"].person, "online")
        gone = register(s, event, people["cancelled"].person, "online")
        services.cancel(s, gone, actor=None)
        s.commit()
        return dict(
            event_id=event.id,
            slug=event.slug,
            start=start,
            organiser=organiser,
            other_organiser=other_organiser,
            **people,
        )


def _section(html: str) -> str:
    start = html.index('<section class="webinar"')
    return html[start : html.index("</section>", start)]


def _expected_wait_message(world) -> str:
    reveal = world["start"] - timedelta(minutes=30)
    tokyo = ZoneInfo("Asia/Tokyo")
    time = format_time(reveal, "Asia/Tokyo", "en")
    if reveal.astimezone(tokyo).date() == utcnow().astimezone(tokyo).date():
        return f"The link will appear here at {time} (JST)."
    return (
        f"The link will appear here on {format_date(reveal, 'Asia/Tokyo', 'en')} at {time} (JST)."
    )


def test_hook_event_sections_webinar(app, client, world):
    page = f"/en/events/{world['slug']}/"

    def seen_by(who):
        c = app.test_client()
        if who is not None:
            login(c, world[who] if isinstance(who, str) else who)
        r = c.get(page)
        assert r.status_code == 200
        return r.text

    # Before the link's time: only organisers see it; the online participant sees when.
    for who in (
        None,
        "nobody",
        "onsite",
        "pending",
        "waiting",
        "cancelled",
        "online",
        "other_organiser",
    ):
        html = seen_by(who)
        assert PASSCODE not in html, who
        assert "zoom.example" not in html, who
    assert _expected_wait_message(world) in _section(seen_by("online"))
    assert "once your registration is confirmed" in _section(seen_by("pending"))
    assert "once your registration is confirmed" in _section(seen_by("waiting"))
    assert "You are registered to attend on site." in _section(seen_by("onsite"))
    assert "People registered to attend online find the link here 30 minutes before the start." in (
        _section(seen_by(None))
    )
    organiser = _section(seen_by("organiser"))
    assert f'href="{URL}"' in organiser
    assert f"<code data-webinar-passcode>{PASSCODE}</code>" in organiser
    assert "You see this as an organiser." in organiser

    # From 30 minutes before the start, the online participant sees it too; nobody else.
    with app.app_context():
        event = db.session.get(Event, world["event_id"])
        event.starts_at = utcnow().replace(microsecond=0) + timedelta(minutes=20)
        event.ends_at = event.starts_at + timedelta(hours=3)
        db.session.commit()
    online = _section(seen_by("online"))
    assert f'<a href="{URL}" rel="noopener noreferrer" target="_blank" data-webinar-link>' in online
    assert f"<code data-webinar-passcode>{PASSCODE}</code>" in online
    for who in (None, "nobody", "onsite", "pending", "waiting", "cancelled", "other_organiser"):
        html = seen_by(who)
        assert PASSCODE not in html and "zoom.example" not in html, who

    # On the participant's registration page as well.
    with app.app_context():
        reg_id = db.session.scalar(
            sa.select(Registration.id).where(Registration.person_id == world["online"].person_id)
        )
    c = app.test_client()
    login(c, world["online"])
    mine = c.get(f"/en/my/registrations/{reg_id}/")
    assert PASSCODE in _section(mine.text)
    login(c, world["nobody"])
    assert c.get(f"/en/my/registrations/{reg_id}/").status_code == 404

    # Japanese page: the same section in Japanese.
    c = app.test_client()
    login(c, world["online"])
    assert PASSCODE in c.get(f"/ja/events/{world['slug']}/").text

    # After the end: the participant no longer gets the link.
    with app.app_context():
        event = db.session.get(Event, world["event_id"])
        event.starts_at = utcnow() - timedelta(hours=4)
        event.ends_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    ended = _section(seen_by("online"))
    assert "The webinar has ended." in ended
    assert PASSCODE not in ended


def test_checked_in_online_participant_still_sees_the_link(app, session):
    event = f.event(session, starts_at=utcnow() + timedelta(minutes=5))
    f.enable(session, event, "webinar", url=URL, passcode=PASSCODE)
    user = f.user(session)
    r = register(session, event, user.person, "online")
    services.check_in(session, r, actor=None)
    session.commit()
    st = wb.webinar_settings(event)
    assert wb.access(event, user, r, st) == wb.Access(
        "participant", True, event.starts_at - timedelta(minutes=30), False
    )
    # Exactly at the set time, not a minute before.
    reveal = event.starts_at - timedelta(minutes=30)
    assert wb.access(event, user, r, st, reveal).visible is True
    assert wb.access(event, user, r, st, reveal - timedelta(seconds=1)).visible is False


def test_settings_keep_only_web_addresses(app, session):
    event = f.event(session)
    f.enable(session, event, "webinar", url="javascript:alert(1)", minutes_before="x")
    session.commit()
    st = wb.webinar_settings(event)
    assert (st.url, st.passcode, st.minutes_before, st.reminder) == ("", "", 30, True)


def test_disabled_webinar_shows_nothing_and_its_page_is_404(app, client, world):
    with app.app_context():
        from portal.events.models import EventPlugin

        row = db.session.scalar(sa.select(EventPlugin).where(EventPlugin.plugin == "webinar"))
        row.enabled = False
        db.session.commit()
    login(client, world["organiser"])
    assert 'class="webinar"' not in client.get(f"/en/events/{world['slug']}/").text
    assert client.get(f"/en/organiser/events/{world['slug']}/webinar/").status_code == 404
    assert "webinar-panel" not in client.get(f"/en/organiser/events/{world['slug']}/").text


def test_hook_dashboard_panels_webinar(app, client, world):
    login(client, world["organiser"])
    html = client.get(f"/en/organiser/events/{world['slug']}/").text
    assert 'id="webinar-panel"' in html
    assert '<dd data-count="reminders">0 sent</dd>' in html
    with app.test_request_context():
        event = db.session.get(Event, world["event_id"])
        stranger = db.session.get(User, world["nobody"].id)
        panels = plugins.call_event_hook("dashboard_panels", event, user=stranger)
        assert [p for p in panels if "webinar-panel" in p] == []


# -- reminders -------------------------------------------------------------------------------


@pytest.fixture
def reminder_world(app):
    with app.app_context():
        s = db.session
        now = utcnow().replace(microsecond=0)
        series = f.series(s)
        due = f.event(s, series, starts_at=now + timedelta(hours=30))
        f.enable(s, due, "webinar", url=URL, passcode=PASSCODE)
        soon = f.event(s, series, starts_at=now + timedelta(hours=10))
        f.enable(s, soon, "webinar", url=URL)
        later = f.event(s, series, starts_at=now + timedelta(hours=50))
        f.enable(s, later, "webinar", url=URL)
        without = f.event(s, series, starts_at=now + timedelta(hours=30))
        silent = f.event(s, series, starts_at=now + timedelta(hours=30))
        f.enable(s, silent, "webinar", url=URL, reminder=False)
        english = f.person(s, preferred_language="en", email="online@example.org")
        japanese = f.person(s, preferred_language="ja", email="onsite@example.org")
        register(s, due, english, "online")
        register(s, due, japanese, "onsite")
        register(s, due, f.person(s), "online", fee_category=paid_category(s, due))
        gone = register(s, due, f.person(s), "online")
        services.cancel(s, gone, actor=None)
        for e in (soon, later, without, silent):
            register(s, e, f.person(s), "online")
        s.commit()
        return dict(due_id=due.id, due_slug=due.slug, start=due.starts_at)


def _reminders(app) -> list[OutboxEmail]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(OutboxEmail)
                .where(OutboxEmail.template == "webinar/reminder")
                .order_by(OutboxEmail.to_address)
            )
        )


def test_hook_cli_commands_webinar(app, runner, reminder_world):
    assert "remind" in app.cli.commands["webinar"].commands

    result = runner.invoke(args=["webinar", "remind"])
    assert result.exit_code == 0, result.output
    assert result.output == "queued 2 reminders\n"

    sent = _reminders(app)
    assert [(m.to_address, m.language) for m in sent] == [
        ("online@example.org", "en"),
        ("onsite@example.org", "ja"),
    ]
    start = reminder_world["start"]
    tokyo = "Asia/Tokyo"
    online, onsite = sent
    with app.app_context():
        event = db.session.get(Event, reminder_world["due_id"])
        assert online.subject == (
            f"Reminder: {event.title.en}, {start.astimezone(ZoneInfo(tokyo)).strftime('%-d %B %Y, %H:%M')} JST"
        )
    assert (
        f"starts on {format_date(start, tokyo, 'en')} at {format_time(start, tokyo, 'en')} (JST)."
        in online.body_text
    )
    assert f"Webinar URL: {URL}" in online.body_text
    assert f"Passcode: {PASSCODE}" in online.body_text
    assert f'<a href="{URL}">' in online.body_html
    # On site: the venue, not the link.
    assert URL not in onsite.body_text and PASSCODE not in onsite.body_text
    assert "会場" in onsite.body_text
    assert format_date(start, tokyo, "ja") in onsite.body_text

    again = runner.invoke(args=["webinar", "remind"])
    assert again.output == "queued 0 reminders\n"
    assert len(_reminders(app)) == 2

    # Someone who registers afterwards still gets one, once.
    with app.app_context():
        event = db.session.get(Event, reminder_world["due_id"])
        register(db.session, event, f.person(db.session, email="late@example.org"), "online")
        db.session.commit()
    assert runner.invoke(args=["webinar", "remind"]).output == "queued 1 reminders\n"
    assert runner.invoke(args=["webinar", "remind"]).output == "queued 0 reminders\n"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebinarReminder)) == 3


def test_reminder_in_the_events_own_zone(app, session):
    workshop = f.series(session, "workshop")
    start = utcnow().replace(microsecond=0) + timedelta(hours=36)
    event = f.event(session, workshop, starts_at=start)
    f.enable(session, event, "webinar", url=URL)
    register(
        session,
        event,
        f.person(session, preferred_language="en", email="mit@example.org"),
        "online",
    )
    session.commit()

    queued = wb.remind(session)
    session.commit()

    assert len(queued) == 1
    mail = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.template == "webinar/reminder"))
    ny = ZoneInfo("America/New_York")
    zone = start.astimezone(ny).tzname()
    assert zone in ("EST", "EDT")
    assert f"at {start.astimezone(ny).strftime('%H:%M')} ({zone})." in mail.body_text


def test_hook_personal_data_webinar(app, runner, reminder_world):
    runner.invoke(args=["webinar", "remind"])
    with app.app_context():
        from portal.accounts.models import Person

        person = db.session.scalar(sa.select(Person).where(Person.email == "online@example.org"))
        data = plugins.manager().get_plugin("webinar").personal_data(person=person)
        reminder = db.session.scalar(sa.select(WebinarReminder))
        assert data == {
            "online_attendance": [],
            "reminders": [
                {"event": reminder_world["due_slug"], "sent_at": reminder.sent_at.isoformat()}
            ],
        }
        nobody = f.person(db.session)
        assert plugins.manager().get_plugin("webinar").personal_data(person=nobody) == {}


def test_hook_blueprints_webinar(app):
    assert "webinar" in app.blueprints
    assert {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("webinar.")} == {
        "/<lang_code>/organiser/events/<slug>/webinar/"
    }
