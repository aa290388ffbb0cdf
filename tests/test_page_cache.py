"""The shared page cache for visitors who are not logged in (portal/pagecache.py): pages come
from the cache shared by every worker, and any change is visible on the next request."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa
from flask import flash, render_template_string

from portal.app import create_app
from portal.db import db, utcnow
from portal.events.models import Event, EventPlugin
from portal.i18n import BilingualText
from portal.pagecache import cached_for_visitors, page_cache
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests.conftest import get_with_statements


def _make_app(app_config, **extra):
    return create_app(dict(app_config, PAGE_CACHE_SECONDS=300, **extra))


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def cached_app(app_config, cache_dir):
    app = _make_app(app_config, CACHE_URL=f"file://{cache_dir}")
    yield app
    app.extensions["portal_db"]["engine"].dispose()


@pytest.fixture
def other_worker(app_config, cache_dir):
    """A second app instance (another worker) sharing the same cache folder."""
    app = _make_app(app_config, CACHE_URL=f"file://{cache_dir}")
    yield app
    app.extensions["portal_db"]["engine"].dispose()


def _event(app, **kw) -> tuple[int, str, str]:
    with app.app_context():
        event = f.event(db.session, title=BilingualText(ja="第1回", en="Old title"), **kw)
        user = f.user(db.session)
        db.session.commit()
        return event.id, event.slug, user.get_id()


def _rename(app, event_id: int, title: str) -> None:
    with app.app_context():
        db.session.get(Event, event_id).title = BilingualText(ja=title, en=title)
        db.session.commit()


def _queries(app, client, path: str):
    response, statements = get_with_statements(app, client, path)
    return response, len(statements)


def test_a_visitor_gets_the_shared_page_without_touching_the_database(app, cached_app):
    _event_id, slug, _user = _event(cached_app)
    path = f"/en/events/{slug}/"
    first, n_first = _queries(cached_app, cached_app.test_client(), path)
    assert first.status_code == 200 and n_first > 0
    # The first rendering learns which event the page shows; the second is kept.
    assert _queries(cached_app, cached_app.test_client(), path)[1] > 0
    again, n_again = _queries(cached_app, cached_app.test_client(), path)
    assert again.status_code == 200
    assert n_again == 0
    assert again.data == first.data
    assert "Set-Cookie" not in again.headers


def test_a_change_shows_at_once_for_visitors_and_members(app, cached_app):
    event_id, slug, user_id = _event(cached_app)
    visitor = cached_app.test_client()
    assert "Old title" in visitor.get(f"/en/events/{slug}/").text
    assert "Old title" in visitor.get("/en/").text
    _rename(cached_app, event_id, "New title")

    assert "New title" in visitor.get(f"/en/events/{slug}/").text
    assert "New title" in visitor.get("/en/").text
    member = cached_app.test_client()
    with member.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True
    assert "New title" in member.get(f"/en/events/{slug}/").text
    # Each language and each address is kept apart.
    assert "New title" in visitor.get(f"/ja/events/{slug}/").text


def test_a_change_through_one_worker_shows_on_the_next_request_of_another(
    app, cached_app, other_worker
):
    event_id, slug, _user = _event(cached_app)
    path = f"/en/events/{slug}/"
    assert "Old title" in cached_app.test_client().get(path).text
    assert "Old title" in other_worker.test_client().get(path).text
    assert _queries(cached_app, cached_app.test_client(), path)[1] == 0

    _rename(other_worker, event_id, "New title")  # committed by the other worker

    assert "New title" in cached_app.test_client().get(path).text


def test_disabling_a_plugin_removes_its_link_at_once(app, cached_app, other_worker):
    with cached_app.app_context():
        event = f.event(db.session)
        f.enable(db.session, event, "calendar")
        db.session.commit()
        slug = event.slug
    path = f"/en/events/{slug}/"
    visitor = cached_app.test_client()
    assert 'data-plugin="calendar"' in visitor.get(path).text
    visitor.get(path)
    assert _queries(cached_app, visitor, path)[1] == 0  # kept

    result = other_worker.test_cli_runner().invoke(
        args=["plugins", "disable", "calendar", "--event", slug]
    )
    assert result.exit_code == 0, result.output

    assert 'data-plugin="calendar"' not in visitor.get(path).text
    with cached_app.app_context():
        row = db.session.scalar(sa.select(EventPlugin).where(EventPlugin.plugin == "calendar"))
        assert row.enabled is False


def test_a_registration_changes_only_its_event_page(app, cached_app, other_worker):
    event_id, slug, _user = _event(cached_app)
    visitor = cached_app.test_client()
    visitor.get(f"/en/events/{slug}/")
    visitor.get(f"/en/events/{slug}/")
    visitor.get("/en/")
    assert _queries(cached_app, visitor, "/en/")[1] == 0
    with other_worker.app_context():
        fee = FeeCategory(
            event_id=event_id, code="general", name=BilingualText(ja="一般", en="General")
        )
        db.session.add(fee)
        db.session.flush()
        db.session.commit()
    # A fee category is event data: the event page is rendered again, the home page kept.
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] > 0
    assert _queries(cached_app, visitor, "/en/")[1] == 0
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] == 0

    with other_worker.app_context():
        person = f.person(db.session)
        db.session.add(
            Registration(
                event_id=event_id,
                person_id=person.id,
                attendance_mode="onsite",
                fee_category_id=fee.id,
                state=RegistrationState.confirmed,
                currency="JPY",
                privacy_accepted_at=utcnow(),
            )
        )
        db.session.commit()
    # A new person is global data (the speaker directory could show it): all pages again.
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] > 0
    assert _queries(cached_app, visitor, "/en/")[1] > 0

    with other_worker.app_context():
        reg = db.session.scalar(sa.select(Registration))
        reg.state = RegistrationState.cancelled
        db.session.commit()
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] > 0
    assert _queries(cached_app, visitor, "/en/")[1] == 0


def test_a_registration_through_the_service_changes_only_its_event_page(
    app, cached_app, other_worker
):
    """``register`` writes the new row with a plain INSERT that names its event: the event's
    page is rendered again at once, the other pages stay kept."""
    from portal.accounts.models import Person
    from portal.registration import services

    event_id, slug, _user = _event(cached_app)
    with other_worker.app_context():
        person_id = f.person(db.session).id
        fee = FeeCategory(event_id=event_id, code="free", name=BilingualText(ja="無料", en="Free"))
        db.session.add(fee)
        db.session.commit()
        fee_id = fee.id
    visitor = cached_app.test_client()
    for path in (f"/en/events/{slug}/", f"/en/events/{slug}/", "/en/", "/en/"):
        visitor.get(path)
    assert _queries(cached_app, visitor, "/en/")[1] == 0
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] == 0

    with other_worker.app_context():
        services.register(
            db.session,
            db.session.get(Event, event_id),
            db.session.get(Person, person_id),
            mode="onsite",
            fee_category=fee_id,
            privacy_accepted=True,
        )
        db.session.commit()
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] > 0
    assert _queries(cached_app, visitor, "/en/")[1] == 0
    with cached_app.app_context():
        [registration] = db.session.scalars(sa.select(Registration)).all()
        assert (registration.event_id, registration.person_id) == (event_id, person_id)
        assert registration.fee_category_id == fee_id
        assert registration.state == RegistrationState.confirmed


def test_a_rolled_back_change_keeps_the_pages(app, cached_app):
    event_id, slug, _user = _event(cached_app)
    visitor = cached_app.test_client()
    visitor.get(f"/en/events/{slug}/")
    visitor.get(f"/en/events/{slug}/")
    with cached_app.app_context():
        db.session.get(Event, event_id).title = BilingualText(ja="x", en="Never saved")
        db.session.flush()
        db.session.rollback()
    response, n = _queries(cached_app, visitor, f"/en/events/{slug}/")
    assert n == 0 and "Old title" in response.text


def test_a_page_is_not_kept_past_the_moment_it_changes_by_itself(app, cached_app):
    start = utcnow().replace(microsecond=0) - time_delta(hours=1)
    _event_id, slug, _user = _event(cached_app, starts_at=start)
    with cached_app.app_context():
        event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
        event.ends_at = utcnow() + time_delta(seconds=2)
        db.session.commit()
    visitor = cached_app.test_client()
    visitor.get(f"/en/events/{slug}/")
    visitor.get(f"/en/events/{slug}/")
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] == 0
    time.sleep(2.2)
    assert _queries(cached_app, visitor, f"/en/events/{slug}/")[1] > 0


def time_delta(**kw):
    from datetime import timedelta

    return timedelta(**kw)


def test_a_change_committed_by_another_process_shows_on_the_next_request(
    app, app_config, cached_app, cache_dir, tmp_path
):
    event_id, slug, _user = _event(cached_app)
    path = f"/en/events/{slug}/"
    visitor = cached_app.test_client()
    assert "Old title" in visitor.get(path).text
    script = textwrap.dedent(
        f"""
        from portal.app import create_app
        from portal.db import db
        from portal.events.models import Event
        from portal.i18n import BilingualText
        app = create_app({{"DATABASE_URL": {app_config["DATABASE_URL"]!r},
                           "SECRET_KEY": "x", "CACHE_URL": "file://{cache_dir}",
                           "UPLOAD_FOLDER": {str(tmp_path / "uploads")!r}}})
        with app.app_context():
            db.session.get(Event, {event_id}).title = BilingualText(ja="別", en="From elsewhere")
            db.session.commit()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert "From elsewhere" in visitor.get(path).text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def test_two_workers_on_redis(app, app_config, redis_url):
    one = _make_app(app_config, CACHE_URL=redis_url)
    two = _make_app(app_config, CACHE_URL=redis_url)
    try:
        event_id, slug, _user = _event(one)
        path = f"/en/events/{slug}/"
        assert "Old title" in one.test_client().get(path).text
        assert "Old title" in two.test_client().get(path).text
        assert _queries(two, two.test_client(), path)[1] == 0  # rendered by one, kept for two
        _rename(two, event_id, "New title")
        assert "New title" in one.test_client().get(path).text
    finally:
        for a in (one, two):
            a.extensions["portal_db"]["engine"].dispose()


def test_pages_are_rendered_when_the_cache_does_not_answer(app, app_config):
    down = _make_app(app_config, CACHE_URL=f"redis://127.0.0.1:{_free_port()}/0")
    try:
        event_id, slug, _user = _event(down)
        assert "Old title" in down.test_client().get(f"/en/events/{slug}/").text
        _rename(down, event_id, "New title")
        assert "New title" in down.test_client().get(f"/en/events/{slug}/").text
    finally:
        down.extensions["portal_db"]["engine"].dispose()


def test_tests_and_zero_seconds_turn_it_off(app, client):
    assert app.config["PAGE_CACHE_SECONDS"] == 0
    _event_id, slug, _user = _event(app)
    client.get(f"/en/events/{slug}/")
    assert _queries(app, client, f"/en/events/{slug}/")[1] > 0


def test_a_visitor_with_a_message_waiting_gets_a_fresh_page(app, cached_app):
    event_id, slug, _user = _event(cached_app)
    assert "Old title" in cached_app.test_client().get(f"/en/events/{slug}/").text
    visitor = cached_app.test_client()
    with visitor.session_transaction() as s:
        s["_flashes"] = [("info", "You have logged out.")]
    page = visitor.get(f"/en/events/{slug}/")
    assert "You have logged out." in page.text
    assert "You have logged out." not in cached_app.test_client().get(f"/en/events/{slug}/").text


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


def test_the_cache_url_chooses_the_backend(app_config, app):
    assert page_cache(app).url == "simple"  # tests: one process's memory


def _log_in(client, user_id: str) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


def _warm(client, path: str) -> None:
    for _ in range(3):  # learn the event, put the CSRF secret into the session, keep
        client.get(path)


def test_a_member_gets_their_own_kept_page_and_sees_their_registration_at_once(
    app, cached_app, other_worker
):
    event_id, slug, user_id = _event(cached_app)
    with cached_app.app_context():
        other = f.user(db.session, given_name="別人", romanized_name="Someone Else")
        fee = FeeCategory(event_id=event_id, code="g", name=BilingualText(ja="一般", en="G"))
        db.session.add(fee)
        db.session.commit()
        other_id, fee_id = other.get_id(), fee.id
        person_id = db.session.get(type(other), int(user_id.split(":")[0])).person_id
    path = f"/en/events/{slug}/"
    member, someone = cached_app.test_client(), cached_app.test_client()
    _log_in(member, user_id)
    _log_in(someone, other_id)
    _warm(member, path)
    _warm(someone, path)
    page, n = _queries(cached_app, member, path)
    assert n == 0 and "Register for this event" in page.text
    mine = page.text
    theirs, n = _queries(cached_app, someone, path)
    assert n == 0 and "Someone Else" in theirs.text and "Someone Else" not in mine

    with other_worker.app_context():
        db.session.add(
            Registration(
                event_id=event_id,
                person_id=person_id,
                attendance_mode="onsite",
                fee_category_id=fee_id,
                state=RegistrationState.confirmed,
                currency="JPY",
                privacy_accepted_at=utcnow(),
            )
        )
        db.session.commit()
    assert "You are registered for this event" in member.get(path).text
    assert "You are registered for this event" not in someone.get(path).text


def test_a_kept_page_of_a_member_is_not_served_after_a_password_change(app, cached_app):
    event_id, slug, user_id = _event(cached_app)
    path = f"/en/events/{slug}/"
    member = cached_app.test_client()
    _log_in(member, user_id)
    _warm(member, path)
    assert _queries(cached_app, member, path)[1] == 0
    assert "Log out" in member.get(path).text
    with cached_app.app_context():
        from portal.accounts.models import User

        user = db.session.get(User, int(user_id.split(":")[0]))
        user.password_changed_at = utcnow() + time_delta(seconds=5)
        db.session.commit()
    page = member.get(path).text
    assert "Log out" not in page and "Log in" in page


def test_the_kept_page_of_a_member_holds_a_working_csrf_token(app_config, cache_dir, app):
    strict = _make_app(app_config, CACHE_URL=f"file://{cache_dir}", WTF_CSRF_ENABLED=True)
    try:
        _event_id, slug, user_id = _event(strict)
        path = f"/en/events/{slug}/"
        member = strict.test_client()
        _log_in(member, user_id)
        _warm(member, path)
        page, n = _queries(strict, member, path)
        assert n == 0
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = member.post("/en/account/logout", data={"csrf_token": token})
        assert response.status_code == 302
        assert "Log in" in member.get(path).text
    finally:
        strict.extensions["portal_db"]["engine"].dispose()
