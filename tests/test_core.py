"""The core: settings, health, languages, formatting, demo data, migrations, translations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from portal import config as portal_config
from portal.app import create_app
from portal.i18n import BilingualText, format_date, format_money, format_person_name, to_minor
from tests import factories as f

# -- settings --------------------------------------------------------------------------------


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(portal_config.ConfigError):
        create_app({"DATABASE_URL": "sqlite://"})


def test_production_sets_secure_cookies(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "a-real-secret-of-at-least-32-bytes")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.org")
    monkeypatch.setenv("PORTAL_ISSUER_NAME", "一般財団法人 架空金属研究財団")
    monkeypatch.setenv("PORTAL_ISSUER_NAME_EN", "Fictional Metals Research Foundation")
    monkeypatch.setenv("PORTAL_ISSUER_REGISTRATION_NUMBER", "T1234567890123")
    app = create_app({"DATABASE_URL": "postgresql+psycopg://portal@127.0.0.1:1/portal"})
    assert app.config["SECRET_KEY"] == "a-real-secret-of-at-least-32-bytes"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_settings_come_from_portal_environment_variables(monkeypatch):
    monkeypatch.setenv("PORTAL_MAIL_PORT", "2525")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.org")
    settings = portal_config.load()
    assert settings["MAIL_PORT"] == 2525
    assert settings["BASE_URL"] == "https://portal.example.org"


# -- health ----------------------------------------------------------------------------------


def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


def test_healthz_unavailable_without_database(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.db", "TESTING": True})
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.json["status"] == "unavailable"


# -- languages and formatting ------------------------------------------------------------------


def test_bilingual_fallback_order():
    both = BilingualText(ja="第93回", en="Meeting 93")
    assert both.get("en") == "Meeting 93"
    assert both.get("ja") == "第93回"
    only_ja = BilingualText(ja="第93回")
    assert only_ja.get("en", default="ja") == "第93回"
    assert BilingualText().get("en") == ""


def test_dates_money_and_names_follow_the_reader(app):
    day = datetime(2020, 11, 6, 5, 30, tzinfo=UTC)  # 14:30 in Tokyo
    with app.test_request_context("/ja/"):
        assert format_date(day, "Asia/Tokyo", "ja") == "2020年11月6日(金)"
        assert format_date(day, "Asia/Tokyo", "en") == "Friday 6 November 2020"
        assert format_money(5000, "JPY", "ja") == "¥5,000"
        assert format_money(5000, "JPY", "en") == "¥5,000"
        assert format_money(25000, "USD", "en") == "$250.00"

        class P:
            family_name, given_name, romanized_name = "山田", "太郎", "Taro Yamada"

        assert format_person_name(P(), "ja") == "山田 太郎"
        assert format_person_name(P(), "en") == "Taro Yamada"

        class Q:
            family_name, given_name, romanized_name = "Example", "Jane", "Jane Example"

        assert format_person_name(Q(), "ja") == "Jane Example"  # no Japanese script: as written
    assert to_minor("250.00", "USD") == 25000
    assert to_minor(5000, "JPY") == 5000


def test_event_page_shows_time_in_event_zone_and_language_switcher(app, client):
    with app.app_context():
        from portal.db import db

        s = f.series(db.session, "workshop")
        e = f.event(db.session, s, starts_at=datetime(2030, 6, 3, 13, 0, tzinfo=UTC))  # 9:00 EDT
        db.session.commit()
        slug = e.slug
    r = client.get(f"/en/events/{slug}/?x=1")
    assert r.status_code == 200
    assert "Monday 3 June 2030" in r.text
    assert "09:00" in r.text and "(EDT)" in r.text and "America/New_York" not in r.text
    assert f'href="/ja/events/{slug}/?x=1"' in r.text  # the switcher keeps page and arguments
    r = client.get(f"/ja/events/{slug}/")
    assert "2030年6月3日(月)" in r.text
    assert "（米国東部夏時間）" in r.text  # the zone as people say it, not "America/New_York"
    assert f'href="/en/events/{slug}/"' in r.text


def test_draft_event_is_hidden_from_visitors(app, client):
    with app.app_context():
        from portal.db import db
        from portal.events.models import EventStatus

        e = f.event(db.session, status=EventStatus.draft)
        db.session.commit()
        slug = e.slug
    assert client.get(f"/en/events/{slug}/").status_code == 404
    assert slug not in client.get("/en/").text


def test_series_page_paginates_past_events(app, client):
    with app.app_context():
        from portal.db import db

        s = f.series(db.session)
        for i in range(25):
            f.event(
                db.session,
                s,
                starts_at=datetime(2010, 1, 1 + i, 5, tzinfo=UTC),
                number=i + 1,
                slug=f"past-{i + 1}",
            )
        db.session.commit()
        slug = s.slug
    page1 = client.get(f"/ja/series/{slug}/")
    page2 = client.get(f"/ja/series/{slug}/?page=2")
    assert page1.status_code == page2.status_code == 200
    assert page1.text.count('class="card"') == 20
    assert page2.text.count('class="card"') == 5
    assert "/ja/events/past-25/" in page1.text  # newest first
    assert "/ja/events/past-1/" in page2.text


def test_unknown_language_prefix_is_404(client):
    assert client.get("/fr/").status_code == 404


# -- demo data -------------------------------------------------------------------------------


def test_demo_load_twice_changes_nothing(app, runner):
    from portal.db import db
    from portal.models import Base

    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "admin@example.org / demo-admin-pass / administrator" in first.output
    with app.app_context():
        counts = {
            t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        again = {
            t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }
    assert again == counts
    assert counts["series"] == 2
    assert (
        counts["events"] == 23 + 2
    )  # 23 past meetings from the repository's history file, 2 upcoming


# -- migrations ------------------------------------------------------------------------------


def test_migrations_agree_with_models(database_url, tmp_path):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.cli import alembic_config
    from portal.models import load_all_models

    if database_url.startswith("postgresql"):
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA migration_check"))
        engine.dispose()
        sep = "&" if "?" in database_url else "?"
        url = f"{database_url}{sep}options=-csearch_path%3Dmigration_check"
    else:
        url = f"sqlite:///{tmp_path}/migrated.db"
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, load_all_models())
    engine.dispose()
    assert diff == []


# -- translations ----------------------------------------------------------------------------


def test_translations_complete(runner):
    result = runner.invoke(args=["translations", "check"])
    assert result.exit_code == 0, result.output


def test_programme_links_each_speaker_to_their_record(app, client):
    with app.app_context():
        from portal.db import db

        e = f.event(db.session)
        speaker = f.person(db.session, romanized_name="Misaki Shiken")
        f.talk(db.session, e, speaker)
        db.session.commit()
        slug, pid = e.slug, speaker.id
    r = client.get(f"/en/events/{slug}/")
    assert f'<a href="/en/speakers/{pid}/">Misaki Shiken</a>' in r.text
