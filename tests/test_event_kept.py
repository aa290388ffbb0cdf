"""The event page's parts kept by content version (portal/events/page.py, ``kept_parts``,
``FRAGMENT_CACHE_SECONDS``) with the page cache off: the programme, the tabs, the fee table
and each plugin's section are read from the shared cache, never stale (a change through
another worker shows on the next request), never another person's, and rendered again when
the event starts."""

from __future__ import annotations

import re
import sys
import time
import types
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from plugins.archive.models import ArchiveItem, ItemKind
from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState
from portal import plugins
from portal.accounts.models import Person, User
from portal.app import create_app
from portal.db import db, utcnow
from portal.events.models import Event, Talk
from portal.hookspecs import hookimpl
from portal.i18n import BilingualText
from portal.pagecache import Part, kept_parts
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests import test_page_cache
from tests.conftest import get_with_statements


def _worker(app_config, cache_dir, **extra) -> Flask:
    config = dict(
        app_config,
        PAGE_CACHE_SECONDS=0,
        FRAGMENT_CACHE_SECONDS=300,
        CACHE_URL=f"file://{cache_dir}",
    )
    return create_app(dict(config, **extra))


@pytest.fixture
def kept_app(kept_workers):
    return kept_workers(PAGE_CACHE_SECONDS=0)


@pytest.fixture
def other_worker(kept_workers):
    return kept_workers(PAGE_CACHE_SECONDS=0)


@pytest.fixture
def world(app):
    """An open hybrid meeting with a talk, a fee, the exchange meeting (10 places), the
    webinar and the calendar; two members."""
    with app.app_context():
        s = db.session
        study = f.series(s, "study_group", slug="study")
        meeting = f.event(s, study, slug="meeting-94", number=94)
        speaker = f.person(s, romanized_name="Alex Sample")
        talk = f.talk(s, meeting, speaker, title=BilingualText(ja="講演", en="Titanium talk"))
        fee = FeeCategory(
            event_id=meeting.id,
            code="general",
            name=BilingualText(ja="一般", en="General"),
            price_minor=5000,
        )
        s.add(fee)
        f.enable(s, meeting, "exchange_meeting", capacity=10, price=3000)
        f.enable(s, meeting, "webinar")
        f.enable(s, meeting, "calendar")
        members = [f.user(s), f.user(s)]
        s.commit()
        return {
            "event": meeting.id,
            "series": study.id,
            "talk": talk.id,
            "speaker": speaker.id,
            "fee": fee.id,
            "members": [m.id for m in members],
            "people": [m.person_id for m in members],
        }


PAGE = "/en/events/meeting-94/"


def _get(app, client, path=PAGE):
    response, seen = get_with_statements(app, client, path)
    assert response.status_code == 200
    return response.text, seen


def _tables(statements: list[str]) -> set[str]:
    return {m for s in statements for m in re.findall(r"FROM (\w+)", s)}


def _login(app, user_id: int):
    client = app.test_client()
    with app.app_context():
        stamp = db.session.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True
    return client


def _places_left(text: str) -> str:
    return re.search(r'data-places-left="(\d+)"', text).group(1)


def _sign_up(app, event_id: int, person_id: int) -> int:
    """A confirmed on-site registration with a place at the exchange meeting."""
    with app.app_context():
        registration = Registration(
            event_id=event_id,
            person_id=person_id,
            attendance_mode="onsite",
            state=RegistrationState.confirmed,
            currency="JPY",
            privacy_accepted_at=utcnow(),
            answers={"exchange_meeting": "y"},
        )
        db.session.add(registration)
        db.session.flush()
        db.session.add(
            ExchangeMeetingSignup(
                registration_id=registration.id,
                event_id=event_id,
                state=SignupState.confirmed,
            )
        )
        db.session.commit()
        return registration.id


def test_the_parts_are_kept_and_read_without_their_queries(kept_app, world):
    visitor = kept_app.test_client()
    first, rendered = _get(kept_app, visitor)
    again, kept = _get(kept_app, visitor)
    assert again == first
    assert {"talks", "fee_categories", "exchange_meeting_signups"} <= _tables(rendered)
    # Kept: the event (with its series) and its plugin rows, nothing else.
    assert _tables(kept) == {"events", "event_plugins", "series_plugins"}
    # The event, the plugin rows of the event and its series (and SQLite's BEGIN).
    assert len([s for s in kept if s != "BEGIN"]) == 2
    for shown in ("Titanium talk", "Alex Sample", "General", "Add to calendar", "Webinar"):
        assert shown in again
    assert _places_left(again) == "10"


def test_the_same_page_with_nothing_kept(app, world):
    """``FRAGMENT_CACHE_SECONDS=0`` (as in tests): every part is rendered, the same HTML."""
    client = app.test_client()
    first, rendered = _get(app, client)
    again, rendered_again = _get(app, client)
    assert again == first
    assert len(rendered_again) == len(rendered)
    assert {"talks", "fee_categories", "exchange_meeting_signups"} <= _tables(rendered_again)


def test_a_change_through_another_worker_shows_on_the_next_request(kept_app, other_worker, world):
    visitor = kept_app.test_client()
    _get(kept_app, visitor)
    _get(kept_app, visitor)

    with other_worker.app_context():  # the programme: a talk renamed
        db.session.get(Talk, world["talk"]).title = BilingualText(ja="新", en="Niobium talk")
        db.session.commit()
    text, _ = _get(kept_app, visitor)
    assert "Niobium talk" in text and "Titanium talk" not in text

    with other_worker.app_context():  # a speaker's name (a person: the global version)
        db.session.get(Person, world["speaker"]).romanized_name = "Robin Sample"
        db.session.commit()
    text, _ = _get(kept_app, visitor)
    assert "Robin Sample" in text and "Alex Sample" not in text

    with other_worker.app_context():  # the fee table: a new price
        db.session.get(FeeCategory, world["fee"]).price_minor = 6000
        db.session.commit()
    assert "6,000" in _get(kept_app, visitor)[0]

    _sign_up(other_worker, world["event"], world["people"][0])  # a place taken
    assert _places_left(_get(kept_app, visitor)[0]) == "9"
    text, statements = _get(kept_app, visitor)  # kept again
    assert _tables(statements) == {"events", "event_plugins", "series_plugins"}

    with other_worker.app_context():  # a plugin switched off: its section and tab go
        event = db.session.get(Event, world["event"])
        plugins.set_enabled(db.session, event, "webinar", False, actor=None)
        plugins.set_enabled(db.session, event, "calendar", False, actor=None)
        db.session.commit()
    text, _ = _get(kept_app, visitor)
    assert 'id="webinar"' not in text and 'data-plugin="calendar"' not in text
    assert 'id="exchange-meeting"' in text


def test_an_archive_item_shows_its_link_at_once(kept_app, other_worker, world):
    with kept_app.app_context():
        f.enable(db.session, db.session.get(Event, world["event"]), "archive")
        db.session.commit()
    visitor = kept_app.test_client()
    _get(kept_app, visitor)
    assert 'data-plugin="archive"' not in _get(kept_app, visitor)[0]
    with other_worker.app_context():
        db.session.add(
            ArchiveItem(
                talk_id=world["talk"],
                kind=ItemKind.link,
                title=BilingualText(ja="録画", en="Recording"),
                url="https://video.example.org/1",
            )
        )
        db.session.commit()
    # The lecture archive's tab (its material is open to members: no link for a visitor).
    assert 'data-plugin="archive"' in _get(kept_app, visitor)[0]


def test_a_members_sections_are_their_own(kept_app, world):
    _sign_up(kept_app, world["event"], world["people"][0])
    mine = _login(kept_app, world["members"][0])
    other = _login(kept_app, world["members"][1])
    visitor = kept_app.test_client()
    for _ in range(2):  # rendered, then kept: each person's own
        mine_text = _get(kept_app, mine)[0]
        other_text = _get(kept_app, other)[0]
        visitor_text = _get(kept_app, visitor)[0]
        assert 'data-exchange-meeting="confirmed"' in mine_text
        assert "You are registered for this event" in mine_text
        assert 'data-exchange-meeting="confirmed"' not in other_text
        assert "You are registered for this event" not in other_text
        assert "data-exchange-meeting" not in visitor_text
        assert "csrf_token" not in visitor_text
        assert _places_left(visitor_text) == _places_left(mine_text) == "9"


def test_a_kept_sections_form_works(app_config, cache_dir, world, app):
    kept_app = _worker(app_config, cache_dir, WTF_CSRF_ENABLED=True)
    try:
        _sign_up(kept_app, world["event"], world["people"][0])
        client = _login(kept_app, world["members"][0])
        _get(kept_app, client)  # the section's form gives the session a CSRF secret
        _get(kept_app, client)
        text, statements = _get(kept_app, client)
        assert "exchange_meeting_signups" not in _tables(statements)  # the kept section
        form = re.search(
            r'<form method="post" action="([^"]+/exchange-meeting)".*?</form>', text, re.S
        )
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.group(0))
        response = client.post(
            form.group(1),
            data={"csrf_token": token.group(1), "action": "leave", "next": "event"},
        )
        assert response.status_code == 302
        with kept_app.app_context():
            signup = db.session.scalar(sa.select(ExchangeMeetingSignup))
            assert signup.state == SignupState.cancelled
        text, _ = _get(kept_app, client)
        assert 'data-exchange-meeting="none"' in text
        assert _places_left(text) == "10"
    finally:
        kept_app.extensions["portal_db"]["engine"].dispose()


def test_the_parts_are_rendered_again_when_the_event_starts(kept_app, world):
    with kept_app.app_context():
        event = db.session.get(Event, world["event"])
        event.starts_at = utcnow() + timedelta(seconds=2)
        event.ends_at = event.starts_at + timedelta(hours=3)
        db.session.commit()
    visitor = kept_app.test_client()
    _get(kept_app, visitor)
    assert "talks" not in _tables(_get(kept_app, visitor)[1])
    time.sleep(2.2)
    assert "talks" in _tables(_get(kept_app, visitor)[1])
    assert "talks" not in _tables(_get(kept_app, visitor)[1])


def test_each_language_is_kept_apart(kept_app, world):
    visitor = kept_app.test_client()
    for _ in range(2):
        assert "Titanium talk" in _get(kept_app, visitor)[0]
        ja = _get(kept_app, visitor, "/ja/events/meeting-94/")[0]
        assert "プログラム" in ja and "Programme" not in ja


def test_a_shared_part_that_makes_a_csrf_token_is_not_kept(kept_app):
    """A token is valid only with its session's secret: a part shared between visitors that
    put one into its HTML is rendered each time; a personal part (keyed by the secret) is
    kept."""
    rendered: list[str] = []

    def render(name):
        def run():
            rendered.append(name)
            return Markup(f"<input value='{generate_csrf()}'>")

        return run

    def page():
        return kept_parts(
            ["event:1"],
            [
                Part(lambda: "t|shared", render("shared")),
                Part(lambda: "t|personal", render("personal"), personal=True),
            ],
        )

    for _ in range(2):
        with kept_app.test_request_context("/en/"):
            page()
    assert rendered == ["shared", "personal", "shared"]


LIVE = "portal_test_live_section_plugin"


def _live_plugin() -> types.ModuleType:
    module = types.ModuleType(LIVE)
    module.name = "live_section"
    module.label = "Live section"
    module.description = "A section from outside the database."
    module.default_settings = {}
    module.event_parts_kept = False
    module.counter = [0]

    @hookimpl
    def event_sections(event, user):
        module.counter[0] += 1
        return [Markup(f"<section id='live'>{module.counter[0]}</section>")]

    module.event_sections = event_sections
    return module


def test_a_plugin_may_have_its_section_rendered_each_time(
    app_config, cache_dir, world, monkeypatch, app
):
    module = _live_plugin()
    monkeypatch.setitem(sys.modules, LIVE, module)
    live_app = _worker(app_config, cache_dir, EXTRA_PLUGINS=(LIVE,))
    try:
        with live_app.app_context():
            event = db.session.get(Event, world["event"])
            plugins.set_enabled(db.session, event, "live_section", True, actor=None)
            db.session.commit()
        visitor = live_app.test_client()
        assert "<section id='live'>1</section>" in _get(live_app, visitor)[0]
        text, statements = _get(live_app, visitor)
        assert "<section id='live'>2</section>" in text
        assert "exchange_meeting_signups" not in _tables(statements)  # the others: kept
    finally:
        live_app.extensions["portal_db"]["engine"].dispose()


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of its own (``tests/test_page_cache.py``; skipped without one)."""
    yield from test_page_cache.redis_url.__wrapped__(tmp_path)


def test_two_workers_share_the_parts_on_redis(app, app_config, redis_url, world):
    one = _worker(app_config, None, CACHE_URL=redis_url)
    two = _worker(app_config, None, CACHE_URL=redis_url)
    try:
        _get(one, one.test_client())  # rendered by one, kept for two
        text, statements = _get(two, two.test_client())
        assert _tables(statements) == {"events", "event_plugins", "series_plugins"}
        assert "Titanium talk" in text
        with two.app_context():
            db.session.get(Talk, world["talk"]).title = BilingualText(ja="新", en="Niobium talk")
            db.session.commit()
        assert "Niobium talk" in _get(one, one.test_client())[0]
    finally:
        for worker in (one, two):
            worker.extensions["portal_db"]["engine"].dispose()


def test_the_page_is_rendered_when_the_cache_does_not_answer(app, app_config, world):
    down = _worker(app_config, None, CACHE_URL="redis://127.0.0.1:9/0")  # nothing listens
    try:
        for _ in range(2):
            text, statements = _get(down, down.test_client())
            assert "Titanium talk" in text and _places_left(text) == "10"
            assert "talks" in _tables(statements)
    finally:
        down.extensions["portal_db"]["engine"].dispose()
