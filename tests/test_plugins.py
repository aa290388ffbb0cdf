"""The plugin host: switching plugins per event (organiser pages and CLI), typed settings, and
the hooks the host calls (blueprints, cli_commands, member_status, event_tabs, event_sections,
dashboard_panels, talk_links), proved with a small plugin made here."""

from __future__ import annotations

import re
import sys
import types
from contextlib import contextmanager

import click
import pytest
import sqlalchemy as sa
from flask import Blueprint, abort
from markupsafe import Markup

from portal import plugins
from portal.accounts.models import User
from portal.app import create_app
from portal.audit import AuditEntry
from portal.db import db
from portal.events.models import Event, EventPlugin, SeriesPlugin
from portal.hookspecs import hookimpl
from portal.plugins import Tab
from tests import factories as f
from tests.conftest import _empty_all_tables

SAMPLE = "portal_test_sample_plugin"


def make_sample_plugin() -> types.ModuleType:
    """A plugin module, as a third-party package would be: attributes and hook functions."""
    module = types.ModuleType(SAMPLE)
    module.name = "sample"
    module.label = "Sample plugin"
    module.description = "A plugin made by the tests."
    module.default_settings = {"greeting": "hello", "seats": 3, "show_badge": True}
    module.settings_labels = {"greeting": "Greeting", "seats": "Seats", "show_badge": "Badge"}

    @hookimpl
    def blueprints():
        bp = Blueprint("sample", __name__, url_prefix="/<lang_code>/sample")

        @bp.get("/events/<slug>/")
        def page(slug):
            event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
            if event is None:
                abort(404)
            plugins.require_enabled(event, "sample")
            return f"sample page says {plugins.settings(event, 'sample')['greeting']}"

        return [bp]

    @hookimpl
    def cli_commands():
        @click.command("sample-hello")
        def hello():
            """Say hello."""
            click.echo("hello from the sample plugin")

        return [hello]

    @hookimpl
    def event_tabs(event, user):
        return [Tab(label="Sample tab", url=f"/sample-tab/{event.slug}", plugin="sample")]

    @hookimpl
    def event_sections(event, user):
        return [
            Markup('<section class="sample-section">Sample section of {}</section>').format(
                event.slug
            )
        ]

    @hookimpl
    def dashboard_panels(event, user):
        who = user.email if user is not None and user.is_authenticated else "nobody"
        return [Markup('<div class="sample-panel">Sample panel for {}</div>').format(who)]

    @hookimpl
    def talk_links(talk, user):
        return [Tab(label="Slides", url=f"/slides/{talk.id}.pdf", plugin="sample")]

    for hook in (
        blueprints,
        cli_commands,
        event_tabs,
        event_sections,
        dashboard_panels,
        talk_links,
    ):
        setattr(module, hook.__name__, hook)
    return module


@pytest.fixture
def sample_app(app_config, database_url, monkeypatch):
    """The portal with the sample plugin installed (like an EXTRA_PLUGINS entry)."""
    monkeypatch.setitem(sys.modules, SAMPLE, make_sample_plugin())
    app = create_app({**app_config, "EXTRA_PLUGINS": (SAMPLE,)})
    yield app
    app.extensions["portal_db"]["engine"].dispose()
    _empty_all_tables(database_url)


@contextmanager
def database(app):
    with app.app_context():
        yield db.session


def login(client, app, user_id: int) -> None:
    with database(app) as s:
        stamp = s.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


def two_events(app, *enable_on_first: str) -> dict:
    """Two events of one series, an organiser of it; the given plugins on the first only."""
    with database(app) as s:
        series = f.series(s, slug="study")
        first = f.event(s, series, slug="first")
        second = f.event(s, series, slug="second")
        speaker = f.person(s)
        talk_first = f.talk(s, first, speaker)
        talk_second = f.talk(s, second, speaker)
        organiser = f.user(s, email="org@example.org", roles=(("organiser", series),))
        for name in enable_on_first:
            f.enable(s, first, name)
        s.commit()
        return {
            "first": first.id,
            "second": second.id,
            "talk_first": talk_first.id,
            "talk_second": talk_second.id,
            "organiser": organiser.id,
        }


def plugin_row(app, event_id: int, name: str) -> EventPlugin | None:
    with database(app) as s:
        return s.scalar(
            sa.select(EventPlugin).where(
                EventPlugin.event_id == event_id, EventPlugin.plugin == name
            )
        )


# -- switching plugins from the organiser's event page ---------------------------------------


def test_turning_calendar_off_removes_its_tab_and_ics(app, client):
    ids = two_events(app, "calendar")
    page = client.get("/en/events/first/")
    assert 'data-plugin="calendar"' in page.text
    assert "Add to calendar" in page.text
    assert client.get("/en/events/first/calendar.ics").status_code == 200

    login(client, app, ids["organiser"])
    dashboard = client.get("/en/organiser/events/first/")
    assert 'action="/en/organiser/events/first/plugins/calendar"' in dashboard.text
    r = client.post("/en/organiser/events/first/plugins/calendar", data={"enabled": "0"})
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/en/organiser/events/first/#plugins")

    page = client.get("/en/events/first/")
    assert 'data-plugin="calendar"' not in page.text
    assert "Add to calendar" not in page.text
    assert client.get("/en/events/first/calendar.ics").status_code == 404
    row = plugin_row(app, ids["first"], "calendar")
    assert row.enabled is False
    with database(app) as s:
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "plugin_disabled"))
        assert (entry.subject_id, entry.actor_id, entry.data) == (
            ids["first"],
            ids["organiser"],
            {"plugin": "calendar"},
        )

    r = client.post("/en/organiser/events/first/plugins/calendar", data={"enabled": "1"})
    assert r.status_code == 302
    assert "Add to calendar" in client.get("/en/events/first/").text
    assert client.get("/en/events/first/calendar.ics").status_code == 200
    assert plugin_row(app, ids["first"], "calendar").enabled is True


def test_unknown_plugin_on_dashboard_is_404(app, client):
    ids = two_events(app)
    login(client, app, ids["organiser"])
    r = client.post("/en/organiser/events/first/plugins/nope", data={"enabled": "1"})
    assert r.status_code == 404
    assert plugin_row(app, ids["first"], "nope") is None


def test_dashboard_lists_installed_plugins_with_typed_settings(sample_app):
    client = sample_app.test_client()
    ids = two_events(sample_app)
    login(client, sample_app, ids["organiser"])
    page = client.get("/en/organiser/events/first/")
    assert page.status_code == 200
    assert 'data-plugin="calendar"' in page.text
    assert 'data-plugin="sample"' in page.text
    assert "A plugin made by the tests." in page.text
    assert (
        '<input id="plugin-sample-greeting" name="plugin-sample-greeting" type="text" value="hello">'
        in page.text
    )
    assert (
        '<input id="plugin-sample-seats" name="plugin-sample-seats" required type="number" value="3">'
        in page.text
    )
    assert (
        '<input checked id="plugin-sample-show_badge" name="plugin-sample-show_badge" type="checkbox" value="y">'
        in page.text
    )


def test_plugin_settings_are_saved_and_bad_input_is_kept(sample_app):
    client = sample_app.test_client()
    ids = two_events(sample_app, "sample")
    login(client, sample_app, ids["organiser"])
    r = client.post(
        "/en/organiser/events/first/plugins/sample/settings",
        data={"plugin-sample-greeting": "ようこそ", "plugin-sample-seats": "many"},
    )
    assert r.status_code == 400
    assert "Not a valid integer value." in r.text
    assert 'value="many"' in r.text
    assert 'value="ようこそ"' in r.text
    assert plugin_row(sample_app, ids["first"], "sample").settings == {}

    r = client.post(
        "/en/organiser/events/first/plugins/sample/settings",
        data={"plugin-sample-greeting": "ようこそ", "plugin-sample-seats": "12"},
    )
    assert r.status_code == 302
    row = plugin_row(sample_app, ids["first"], "sample")
    assert row.settings == {"greeting": "ようこそ", "seats": 12, "show_badge": False}
    assert client.get("/en/sample/events/first/").text == "sample page says ようこそ"
    with database(sample_app) as s:
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "plugin_settings"))
        assert entry.data == {
            "plugin": "sample",
            "settings": {"greeting": "ようこそ", "seats": 12, "show_badge": False},
        }
    page = client.get("/en/organiser/events/first/")
    assert 'name="plugin-sample-seats" required type="number" value="12"' in page.text


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_lists_enables_and_disables_plugins(app, runner):
    ids = two_events(app, "calendar")
    result = runner.invoke(args=["plugins", "list", "--event", "first"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1:3] for line in result.output.splitlines()}
    assert rows["calendar"] == ["event", "on"]
    assert rows["archive"] == ["series", "off"]

    result = runner.invoke(args=["plugins", "disable", "calendar", "--event", "first"])
    assert result.exit_code == 0
    assert result.output == "calendar is off for first.\n"
    assert plugin_row(app, ids["first"], "calendar").enabled is False
    result = runner.invoke(args=["plugins", "list", "--event", "first"])
    assert {ln.split()[0]: ln.split()[2] for ln in result.output.splitlines()}["calendar"] == "off"

    result = runner.invoke(args=["plugins", "enable", "calendar", "--event", "second"])
    assert result.exit_code == 0
    assert result.output == "calendar is on for second.\n"
    assert plugin_row(app, ids["second"], "calendar").enabled is True
    with database(app) as s:
        actions = [
            (e.action, e.subject_id, e.actor_id)
            for e in s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert actions == [
        ("plugin_disabled", ids["first"], None),
        ("plugin_enabled", ids["second"], None),
    ]

    result = runner.invoke(args=["plugins", "list"])
    assert result.exit_code == 0
    assert [ln.split()[0] for ln in result.output.splitlines()] == list(_installed_names(app))


def test_cli_series_plugins_are_switched_per_series(app, runner):
    """Membership, the archive and attendance belong to a series: ``--series SLUG``; given an
    event they say so; the series' events have them on."""
    ids = two_events(app)
    result = runner.invoke(args=["plugins", "enable", "archive", "--event", "first"])
    assert result.exit_code != 0
    assert "archive belongs to a whole series: use --series study." in result.output
    result = runner.invoke(args=["plugins", "enable", "archive", "--series", "study"])
    assert (result.exit_code, result.output) == (0, "archive is on for study.\n")
    result = runner.invoke(args=["plugins", "enable", "calendar", "--series", "study"])
    assert result.exit_code != 0
    assert "calendar is switched per event: use --event SLUG." in result.output
    result = runner.invoke(args=["plugins", "list", "--series", "study"])
    rows = {ln.split()[0]: ln.split()[1:3] for ln in result.output.splitlines()}
    assert rows["archive"] == ["series", "on"] and rows["membership"] == ["series", "off"]
    for slug in ("first", "second"):
        result = runner.invoke(args=["plugins", "list", "--event", slug])
        rows = {ln.split()[0]: ln.split()[1:3] for ln in result.output.splitlines()}
        assert rows["archive"] == ["series", "on"]
    result = runner.invoke(args=["plugins", "enable", "archive"])
    assert result.exit_code != 0 and "Give --event SLUG or --series SLUG." in result.output
    with database(app) as s:
        entries = [(e.subject_type, e.action) for e in s.scalars(sa.select(AuditEntry))]
    assert entries == [("series", "plugin_enabled")]
    assert ids["first"]


def test_series_plugins_page_switches_for_the_whole_series(app, client):
    """Organisers switch series plugins on the series' page; the event page lists only the
    event's own plugins and says which series plugins are on. Another series' organiser and
    event plugins are refused."""
    ids = two_events(app)
    with database(app) as s:
        other = f.user(s, roles=(("organiser", f.series(s, slug="other")),)).id
        s.commit()
    login(client, app, ids["organiser"])
    page = client.get("/en/organiser/series/study/plugins")
    assert page.status_code == 200
    cards = set(re.findall(r'data-plugin="([a-z_]+)"', page.text))
    assert cards == {"membership", "archive", "attendance"}
    r = client.post("/en/organiser/series/study/plugins/archive", data={"enabled": "1"})
    assert r.status_code == 302
    event_page = client.get("/en/organiser/events/first/").text
    assert 'data-plugin="archive"' not in event_page and 'data-plugin="calendar"' in event_page
    assert "On for the whole series: Lecture archive." in event_page
    assert (
        client.post("/en/organiser/events/first/plugins/archive", data={"enabled": "0"}).status_code
        == 404
    )
    assert (
        client.post(
            "/en/organiser/series/study/plugins/calendar", data={"enabled": "1"}
        ).status_code
        == 404
    )
    assert client.get("/en/events/first/archive/").status_code == 200
    assert client.get("/en/events/second/archive/").status_code == 200
    login(client, app, other)
    assert client.get("/en/organiser/series/study/plugins").status_code == 404
    assert (
        client.post("/en/organiser/series/study/plugins/archive", data={"enabled": "0"}).status_code
        == 404
    )
    with database(app) as s:
        assert [r.enabled for r in s.scalars(sa.select(SeriesPlugin))] == [True]


def _installed_names(app) -> list[str]:
    with app.test_request_context():
        return list(plugins.installed())


def test_cli_unknown_plugin_or_event_fails_clearly(app, runner):
    ids = two_events(app)
    result = runner.invoke(args=["plugins", "enable", "nope", "--event", "first"])
    assert result.exit_code != 0
    assert "No plugin named 'nope'." in result.output
    result = runner.invoke(args=["plugins", "disable", "calendar", "--event", "no-such-event"])
    assert result.exit_code != 0
    assert "No event with the slug 'no-such-event'." in result.output
    result = runner.invoke(args=["plugins", "list", "--event", "no-such-event"])
    assert result.exit_code != 0
    assert "No event with the slug 'no-such-event'." in result.output
    assert plugin_row(app, ids["first"], "nope") is None
    assert plugin_row(app, ids["first"], "calendar") is None


# -- hooks -----------------------------------------------------------------------------------


def test_hook_blueprints_mounts_plugin_pages_app_wide(sample_app):
    client = sample_app.test_client()
    # Mounted for the whole app, even before any event has the plugin on.
    assert "sample.page" in sample_app.view_functions
    ids = two_events(sample_app, "sample")
    assert client.get("/en/sample/events/first/").text == "sample page says hello"
    # A disabled plugin's pages answer 404 for that event (require_enabled).
    assert client.get("/en/sample/events/second/").status_code == 404
    assert ids["second"]


def test_hook_cli_commands_adds_commands_app_wide(sample_app):
    result = sample_app.test_cli_runner().invoke(args=["sample-hello"])
    assert result.exit_code == 0
    assert result.output == "hello from the sample plugin\n"


def test_hook_event_tabs_only_on_events_with_the_plugin(sample_app):
    client = sample_app.test_client()
    two_events(sample_app, "sample")
    first = client.get("/en/events/first/")
    second = client.get("/en/events/second/")
    assert '<a href="/sample-tab/first" data-plugin="sample">Sample tab</a>' in first.text
    assert "Sample tab" not in second.text


def test_hook_event_sections_only_on_events_with_the_plugin(sample_app):
    client = sample_app.test_client()
    two_events(sample_app, "sample")
    assert (
        '<section class="sample-section">Sample section of first</section>'
        in client.get("/ja/events/first/").text
    )
    assert "sample-section" not in client.get("/ja/events/second/").text


def test_hook_dashboard_panels_only_on_events_with_the_plugin(sample_app):
    client = sample_app.test_client()
    ids = two_events(sample_app, "sample")
    login(client, sample_app, ids["organiser"])
    first = client.get("/en/organiser/events/first/")
    second = client.get("/en/organiser/events/second/")
    assert '<div class="sample-panel">Sample panel for org@example.org</div>' in first.text
    assert "sample-panel" not in second.text


def test_hook_talk_links_beside_talks_of_events_with_the_plugin(sample_app):
    client = sample_app.test_client()
    ids = two_events(sample_app, "sample")
    first = client.get("/en/events/first/")
    second = client.get("/en/events/second/")
    link = f'<a href="/slides/{ids["talk_first"]}.pdf" data-plugin="sample">Slides</a>'
    assert link in first.text
    assert "/slides/" not in second.text


class Abstains:
    @hookimpl
    def member_status(self, user, series):
        return None


class Knows:
    @hookimpl
    def member_status(self, user, series):
        return series.slug == "study"


class Denies:
    @hookimpl(tryfirst=True)
    def member_status(self, user, series):
        return False


def test_hook_member_status_first_answer_wins_app_wide(app):
    with database(app) as s:
        study = f.series(s, slug="study")
        workshop = f.series(s, "workshop", slug="workshop")
        user = f.user(s)
        pm = app.extensions["portal_plugins"]
        # Nobody knows: None.
        assert pm.hook.member_status(user=user, series=study) is None
        pm.register(Abstains(), name="abstains")
        pm.register(Knows(), name="knows")
        # A plugin answering None is skipped; the first real answer wins. App-wide: no event
        # needs the plugin on.
        assert pm.hook.member_status(user=user, series=study) is True
        assert pm.hook.member_status(user=user, series=workshop) is False
        pm.register(Denies(), name="denies")
        assert pm.hook.member_status(user=user, series=study) is False
