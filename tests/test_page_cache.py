"""The event page's cache for visitors who are not logged in (portal/pagecache.py)."""

from __future__ import annotations

import time

import pytest
from flask import flash, render_template_string

from portal.app import create_app
from portal.db import db
from portal.events.models import Event
from portal.i18n import BilingualText
from portal.pagecache import cached_for_visitors
from tests import factories as f


@pytest.fixture
def cached_app(app_config):
    app = create_app(dict(app_config, PAGE_CACHE_SECONDS=60))
    yield app
    app.extensions["portal_db"]["engine"].dispose()


def _event(app) -> tuple[int, str, str]:
    with app.app_context():
        event = f.event(db.session, title=BilingualText(ja="第1回", en="Old title"))
        user = f.user(db.session)
        db.session.commit()
        return event.id, event.slug, user.get_id()


def _rename(app, event_id: int, title: str) -> None:
    with app.app_context():
        db.session.get(Event, event_id).title = BilingualText(ja=title, en=title)
        db.session.commit()


def test_a_visitor_gets_the_kept_page_a_member_a_fresh_one(app, cached_app):
    event_id, slug, user_id = _event(cached_app)
    visitor = cached_app.test_client()
    assert "Old title" in visitor.get(f"/en/events/{slug}/").text
    _rename(cached_app, event_id, "New title")

    again = cached_app.test_client().get(f"/en/events/{slug}/")
    assert again.status_code == 200
    assert "Old title" in again.text
    assert "Set-Cookie" not in again.headers

    member = cached_app.test_client()
    with member.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True
    assert "New title" in member.get(f"/en/events/{slug}/").text
    # Each language and each address is kept apart.
    assert "New title" in visitor.get(f"/ja/events/{slug}/").text


def test_the_kept_page_expires(app_config, app):
    short = create_app(dict(app_config, PAGE_CACHE_SECONDS=1))
    try:
        event_id, slug, _user = _event(short)
        client = short.test_client()
        assert "Old title" in client.get(f"/en/events/{slug}/").text
        _rename(short, event_id, "New title")
        assert "Old title" in client.get(f"/en/events/{slug}/").text
        time.sleep(1.1)
        assert "New title" in client.get(f"/en/events/{slug}/").text
    finally:
        short.extensions["portal_db"]["engine"].dispose()


def test_tests_and_zero_seconds_turn_it_off(app, client):
    assert app.config["PAGE_CACHE_SECONDS"] == 0
    event_id, slug, _user = _event(app)
    assert "Old title" in client.get(f"/en/events/{slug}/").text
    _rename(app, event_id, "New title")
    assert "New title" in client.get(f"/en/events/{slug}/").text


def test_a_visitor_with_a_message_waiting_gets_a_fresh_page(app, cached_app):
    event_id, slug, _user = _event(cached_app)
    assert "Old title" in cached_app.test_client().get(f"/en/events/{slug}/").text
    _rename(cached_app, event_id, "New title")
    visitor = cached_app.test_client()
    with visitor.session_transaction() as s:
        s["_flashes"] = [("info", "You have logged out.")]
    page = visitor.get(f"/en/events/{slug}/")
    assert "New title" in page.text
    assert "You have logged out." in page.text


def test_pages_that_touch_the_session_are_never_kept(app, cached_app):
    @cached_for_visitors
    def with_token():
        return render_template_string("{{ csrf_token() }}")

    @cached_for_visitors
    def with_flash():
        flash("hello")
        return "flashed"

    cached_app.add_url_rule("/t/token", view_func=with_token)
    cached_app.add_url_rule("/t/flash", view_func=with_flash)
    first = cached_app.test_client().get("/t/token").text
    second = cached_app.test_client().get("/t/token").text
    assert first != second
    response = cached_app.test_client().get("/t/flash")
    assert "Set-Cookie" in response.headers
    assert "Set-Cookie" in cached_app.test_client().get("/t/flash").headers


def test_not_found_is_not_kept(app, cached_app):
    client = cached_app.test_client()
    assert client.get("/en/events/nope/").status_code == 404
    with cached_app.app_context():
        f.event(db.session, slug="nope")
        db.session.commit()
    assert client.get("/en/events/nope/").status_code == 200
