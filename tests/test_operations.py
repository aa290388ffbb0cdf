"""Running in production: settings checks, failure pages that need nothing, /healthz within a
second whatever hangs, timeouts, request logs without personal data."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
import sqlalchemy as sa

from portal import config as portal_config
from portal.app import create_app
from portal.db import db

GOOD = {
    "ENV": "production",
    "SECRET_KEY": "x" * 32,
    "DATABASE_URL": "postgresql+psycopg://portal@127.0.0.1:1/portal",
    "BASE_URL": "https://portal.example.org",
    "ISSUER_NAME": "一般財団法人 架空金属研究財団",
    "ISSUER_NAME_EN": "Fictional Metals Research Foundation",
    "ISSUER_REGISTRATION_NUMBER": "T1234567890123",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": "x" * 31}, "PORTAL_SECRET_KEY must be at least 32 bytes long"),
        ({"SECRET_KEY": ""}, "PORTAL_SECRET_KEY must be set"),
        ({"DATABASE_URL": "sqlite:////srv/portal.db"}, "production needs PostgreSQL"),
        ({"BASE_URL": "http://localhost:5000"}, "PORTAL_BASE_URL must be the public address"),
        ({"BASE_URL": "http://127.0.0.1"}, "PORTAL_BASE_URL must be the public address"),
        (
            {"ISSUER_REGISTRATION_NUMBER": "T0000000000000"},
            "PORTAL_ISSUER_REGISTRATION_NUMBER is still the sample issuer's",
        ),
        (
            {"ISSUER_NAME": "一般財団法人 見本金属振興財団"},
            "PORTAL_ISSUER_NAME is still the sample issuer's",
        ),
        (
            {"ISSUER_NAME_EN": "Sample Metals Foundation"},
            "PORTAL_ISSUER_NAME_EN is still the sample issuer's",
        ),
        ({"ISSUER_REGISTRATION_NUMBER": "T123"}, "must be T followed by 13 digits"),
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, change, message):
    for key in ("PORTAL_SECRET_KEY", "PORTAL_BASE_URL", "PORTAL_DATABASE_URL", "PORTAL_ENV"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(portal_config.ConfigError, match=message):
        portal_config.load({**GOOD, **change})


def test_production_accepts_good_settings_and_sqlite_when_the_operator_means_it(monkeypatch):
    monkeypatch.delenv("PORTAL_ALLOW_SQLITE_IN_PRODUCTION", raising=False)
    assert portal_config.load(GOOD)["SESSION_COOKIE_SECURE"] is True
    settings = portal_config.load(
        {**GOOD, "DATABASE_URL": "sqlite:////srv/portal.db", "ALLOW_SQLITE_IN_PRODUCTION": True}
    )
    assert settings["DATABASE_URL"] == "sqlite:////srv/portal.db"


def test_one_redis_url_feeds_broker_rate_limits_and_cache(monkeypatch):
    monkeypatch.setenv("PORTAL_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("PORTAL_BROKER_URL", raising=False)
    settings = portal_config.load()
    assert settings["BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert settings["RATELIMIT_STORAGE_URL"] == "redis://127.0.0.1:6379/0"
    assert settings["CACHE_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    monkeypatch.delenv("PORTAL_REDIS_URL")
    assert portal_config.load()["BROKER_URL"].startswith("sqla+sqlite:///")


@pytest.fixture
def black_hole():
    """A TCP port that accepts connections and never answers (a hung database)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(50)
    yield sock.getsockname()[1]
    sock.close()


def _app(app_config, **config):
    return create_app(dict(app_config, **config))


def test_database_down_gives_a_static_bilingual_503_with_retry_after(app_config):
    app = _app(
        app_config,
        DATABASE_URL="postgresql+psycopg://portal@127.0.0.1:1/portal",
        PROPAGATE_EXCEPTIONS=False,
    )
    client = app.test_client()
    r = client.get("/ja/")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "30"
    assert r.headers["Cache-Control"] == "no-store"
    assert "ただいまご利用いただけません" in r.text
    assert "Temporarily unavailable" in r.text
    r = client.post("/en/account/login", data={"email": "a@example.org", "password": "x"})
    assert r.status_code == 503
    assert "ただいまご利用いただけません" in r.text


def test_healthz_answers_within_a_second_when_the_database_hangs(app_config, black_hole):
    app = _app(
        app_config,
        DATABASE_URL=f"postgresql+psycopg://portal@127.0.0.1:{black_hole}/portal",
        DB_CONNECT_TIMEOUT=5,
    )
    started = time.monotonic()
    r = app.test_client().get("/healthz")
    assert time.monotonic() - started < 1.0
    assert r.status_code == 503
    assert r.json == {
        "status": "unavailable",
        "database": "timeout",
        "broker": "ok",
        "storage": "ok",
    }


def test_a_hung_database_fails_the_request_after_the_connect_timeout(app_config, black_hole):
    app = _app(
        app_config,
        DATABASE_URL=f"postgresql+psycopg://portal@127.0.0.1:{black_hole}/portal",
        DB_CONNECT_TIMEOUT=1,
        PROPAGATE_EXCEPTIONS=False,
    )
    started = time.monotonic()
    r = app.test_client().get("/en/")
    assert time.monotonic() - started < 4
    assert r.status_code == 503


def test_healthz_reports_a_broker_that_is_down_as_degraded(app_config):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    app = _app(app_config, BROKER_URL=f"redis://127.0.0.1:{free}/0")
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    assert r.json["status"] == "degraded"
    assert r.json["database"] == "ok"
    # Refused at once, or (on a very busy machine) not answered within the deadline.
    assert r.json["broker"] in {"ConnectionError", "timeout"}
    assert r.json["storage"] == "ok"


def test_healthz_asks_a_sqlalchemy_broker_s_database_itself(app_config, tmp_path):
    """kombu's SQLAlchemy transport (the broker of ``make run``) is checked with a query on
    its database, not through Celery: one that cannot be opened is reported."""
    app = _app(app_config, BROKER_URL=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    r = app.test_client().get("/healthz")
    assert (r.status_code, r.json["status"], r.json["broker"]) == (200, "ok", "ok")

    missing = tmp_path / "no-such-folder" / "broker.sqlite"
    app = _app(app_config, BROKER_URL=f"sqla+sqlite:///{missing}")
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    assert r.json == {
        "status": "degraded",
        "database": "ok",
        "broker": "OperationalError",
        "storage": "ok",
    }


@pytest.mark.postgres_only
def test_statement_and_pool_timeouts_turn_a_stuck_database_into_a_503(app, app_config):
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    slow = _app(app_config, DB_STATEMENT_TIMEOUT_MS=200)
    with slow.app_context(), pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        db.session.execute(sa.text("SELECT pg_sleep(3)"))

    tight = _app(
        app_config,
        DB_POOL_SIZE=1,
        DB_MAX_OVERFLOW=0,
        DB_POOL_TIMEOUT=1,
        PROPAGATE_EXCEPTIONS=False,
    )
    held = tight.extensions["portal_db"]["engine"].connect()  # the only connection
    try:
        started = time.monotonic()
        r = tight.test_client().get("/en/")
        assert r.status_code == 503
        assert 0.9 < time.monotonic() - started < 4
    finally:
        held.close()
    for a in (slow, tight):
        a.extensions["portal_db"]["engine"].dispose()


def test_a_broken_error_page_falls_back_to_a_static_page(app_config, monkeypatch):
    app = _app(app_config, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("bug")

    import portal.errors

    def broken(*args, **kwargs):
        raise RuntimeError("template broken")

    monkeypatch.setattr(portal.errors, "render_template", broken)
    r = app.test_client().get("/boom")
    assert r.status_code == 500
    assert "エラーが発生しました" in r.text


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        from portal.logs import JSONFormatter

        self.setFormatter(JSONFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_one_json_line_per_request_with_the_request_id_and_no_personal_data(app, client):
    handler = _Lines()
    logger = logging.getLogger("portal.request")
    logger.addHandler(handler)
    try:
        r = client.get("/en/?email=hanako@example.org", headers={"X-Request-ID": "lb-42.abc"})
        assert r.headers["X-Request-ID"] == "lb-42.abc"
        client.post("/en/account/login", data={"email": "hanako@example.org", "password": "secret"})
        r = client.get("/en/", headers={"X-Request-ID": "bad id <script>"})
        generated = r.headers["X-Request-ID"]
    finally:
        logger.removeHandler(handler)
    assert len(handler.lines) == 3
    first, second, third = (json.loads(line) for line in handler.lines)
    assert first["request_id"] == "lb-42.abc"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/en/", 200)
    assert first["msg"] == "request" and first["duration_ms"] >= 0
    assert second["method"] == "POST" and second["path"] == "/en/account/login"
    assert third["request_id"] == generated and len(generated) == 32
    text = "\n".join(handler.lines)
    assert "hanako" not in text and "secret" not in text


def test_sql_parameters_never_reach_errors_or_logs(app):
    with app.app_context():
        with pytest.raises(sa.exc.StatementError) as info:
            db.session.execute(
                sa.text("SELECT * FROM no_such_table WHERE email = :email"),
                {"email": "hanako@example.org"},
            )
        db.session.rollback()
    assert "hanako@example.org" not in str(info.value)
    assert "parameters hidden" in str(info.value)


def test_db_downgrade_and_current_roll_the_schema_back_and_forth(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'roll.db'}", "TESTING": True})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "i13_0001"]).exit_code == 0
    result = runner.invoke(args=["db", "downgrade", "b1a2c3d4e5f6"])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'roll.db'}")
    with engine.connect() as conn:
        assert "job_runs" not in sa.inspect(conn).get_table_names()
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "b1a2c3d4e5f6"
    assert runner.invoke(args=["db", "upgrade", "i13_0001"]).exit_code == 0
    with engine.connect() as conn:
        assert "job_runs" in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_series_plugins_migration_keeps_what_the_events_had_on(tmp_path):
    """Upgrading to series plugins: a series gets membership, archive and attendance on when
    one of its events had them on, with the settings of the latest such event; event plugins
    stay per event."""
    from portal.events.models import EventPlugin
    from tests import factories as f

    url = f"sqlite:///{tmp_path / 'scope.db'}"
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "i14b_0001"]).exit_code == 0
    with app.app_context():
        s = db.session
        study, other = f.series(s, slug="study"), f.series(s, slug="other")
        old = f.event(s, study, starts_at=f.at(2020, 1, 10, 5))
        new = f.event(s, study, starts_at=f.at(2021, 1, 10, 5))
        lone = f.event(s, other, starts_at=f.at(2021, 1, 10, 5))
        for event, plugin, on, settings in (
            (old, "attendance", True, {"public": True}),
            (new, "attendance", True, {"public": False}),
            (old, "archive", True, {"max_file_mb": 5}),
            (new, "membership", False, {}),
            (lone, "calendar", True, {}),
        ):
            s.add(EventPlugin(event_id=event.id, plugin=plugin, enabled=on, settings=settings))
        s.commit()
        ids = (study.id, other.id)
    assert runner.invoke(args=["db", "upgrade", "i10_0002"]).exit_code == 0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT series_id, plugin, enabled, settings FROM series_plugins ORDER BY plugin"
            )
        ).all()
        assert [(r[0], r[1], bool(r[2]), json.loads(r[3])) for r in rows] == [
            (ids[0], "archive", True, {"max_file_mb": 5}),
            (ids[0], "attendance", True, {"public": False}),
        ]
        assert conn.scalar(sa.text("SELECT count(*) FROM event_plugins")) == 5
    engine.dispose()
