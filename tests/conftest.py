"""Fixtures: an app on SQLite (default) or PostgreSQL (PORTAL_TEST_DATABASE_URL), a real SMTP
server (aiosmtpd), a live server for the browser tests, and small factories."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from flask import Flask
from jinja2 import BytecodeCache
from werkzeug.routing.rules import Rule as WerkzeugRule
from werkzeug.serving import make_server

from portal.accounts import passwords
from portal.app import create_app
from portal.db import make_engine
from portal.models import load_all_models

metadata = load_all_models()


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """Tests read the Japanese catalogue as users do: compile it when the .po is newer."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from portal.config import ROOT

    po = ROOT / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
        with po.open("rb") as f:
            catalog = read_po(f, locale="ja")
        with mo.open("wb") as f:
            write_mo(f, catalog)


# -- test speed: cheap Argon2 parameters (the suite's own setting) ------------------------------
# Production hashes with argon2-cffi's defaults (RFC 9106 low-memory: 3 passes over 64 MiB,
# 4 lanes), about 0.1-0.4 s of CPU per hash and per check by design. The suite creates
# hundreds of accounts and logs in hundreds of times, so in this process the hasher uses the
# smallest parameters instead (same Argon2id code path). Tests that need the real parameters
# take the `production_password_hashing` fixture (tests/test_accounts.py checks them). The
# portal's own processes started by tests (gunicorn, workers, CLI) keep the production ones.
TEST_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PRODUCTION_PASSWORD_HASHER = passwords._hasher


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    passwords._hasher = TEST_PASSWORD_HASHER
    yield
    passwords._hasher = PRODUCTION_PASSWORD_HASHER


@pytest.fixture
def production_password_hashing(monkeypatch):
    """portal.accounts.passwords' own hasher (production parameters), for this test."""
    monkeypatch.setattr(passwords, "_hasher", PRODUCTION_PASSWORD_HASHER)
    return PRODUCTION_PASSWORD_HASHER


# -- test speed: one compiled URL builder per route for the whole run --------------------------
# Every test creates its app, and most of create_app's time (about 0.1 s, a thousand times a
# run) goes to Werkzeug compiling two URL-building functions per route from a generated AST.
# Those functions depend only on the rule's text, its parsed parts and its defaults, which are
# the same in every app of the run, so the compiled function is kept and reused. Each app
# still builds its own Map and Rules; only the identical code object is shared.
_url_builders: dict = {}
_compile_url_builder = WerkzeugRule._compile_builder


def _reused_url_builder(self, append_unknown: bool = True):
    key = (
        type(self),
        self.rule,
        append_unknown,
        tuple(self._trace),
        tuple(sorted((str(k), repr(v)) for k, v in (self.defaults or {}).items())),
        tuple((name, type(c), c.regex) for name, c in sorted(self._converters.items())),
    )
    builder = _url_builders.get(key)
    if builder is None:
        builder = _url_builders[key] = _compile_url_builder(self, append_unknown)
    return builder


WerkzeugRule._compile_builder = _reused_url_builder


# -- test speed: each template compiled once per run ---------------------------------------------
# Every test's app has its own Jinja environment, which compiled every template it rendered
# again (a large part of a page test's time). Jinja's bytecode cache (its documented way to
# keep compiled templates) is shared by the run's apps in memory: the code of a template is
# reused when its name, file, source and the environment's compile-time settings are the same.


def _jinja_signature(env) -> tuple:
    autoescape = env.autoescape
    return (
        type(env),
        env.code_generator_class,
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        tuple(sorted(env.extensions)),
        env.optimized,
        env.finalize is not None,
        env.is_async,
        getattr(autoescape, "__qualname__", autoescape),
    )


class SharedTemplateCode(BytecodeCache):
    def __init__(self):
        self.codes: dict = {}

    def _key(self, bucket) -> tuple:
        return (bucket.key, bucket.checksum, _jinja_signature(bucket.environment))

    def load_bytecode(self, bucket) -> None:
        bucket.code = self.codes.get(self._key(bucket))

    def dump_bytecode(self, bucket) -> None:
        self.codes[self._key(bucket)] = bucket.code


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedTemplateCode()}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()
    return url


# Tables with at least this many rows are emptied with TRUNCATE on PostgreSQL; smaller ones
# with DELETE, which costs a millisecond where a TRUNCATE of the 50-odd tables (new files for
# each) cost about 0.17 s after every test.
_TRUNCATE_FROM_ROWS = 5000

# The sequences of the models' tables that handed out a number since they were last restarted.
_USED_SEQUENCES = sa.text(
    """
    SELECT seq.relname FROM pg_class seq
    JOIN pg_namespace ns ON ns.oid = seq.relnamespace
    JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = seq.oid
        AND dep.deptype IN ('a', 'i')
    JOIN pg_class tab ON tab.oid = dep.refobjid
    JOIN pg_sequences ps ON ps.schemaname = ns.nspname AND ps.sequencename = seq.relname
    WHERE seq.relkind = 'S' AND ns.nspname = current_schema()
        AND ps.last_value IS NOT NULL AND tab.relname IN :tables
    """
).bindparams(sa.bindparam("tables", expanding=True))


def _empty_all_tables(url: str) -> None:
    """Every table of the models empty, and (PostgreSQL) their id sequences restarted, as
    after ``TRUNCATE … RESTART IDENTITY``; on SQLite an emptied table's ids restart anyway."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            tables = metadata.sorted_tables
            rows = conn.execute(
                sa.text(
                    " UNION ALL ".join(
                        f'SELECT {i}, (SELECT count(*) FROM (SELECT 1 FROM "{t.name}" '
                        f"LIMIT {_TRUNCATE_FROM_ROWS}) AS x)"
                        for i, t in enumerate(tables)
                    )
                )
            ).all()
            counts = {tables[i]: n for i, n in rows}
            big = [t for t in tables if counts[t] >= _TRUNCATE_FROM_ROWS]
            if big:
                names = ", ".join(f'"{t.name}"' for t in big)
                conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
            for table in reversed(tables):
                if 0 < counts[table] < _TRUNCATE_FROM_ROWS:
                    conn.execute(table.delete())
            for name in conn.scalars(_USED_SEQUENCES, {"tables": [t.name for t in tables]}):
                conn.execute(sa.text(f'ALTER SEQUENCE "{name}" RESTART'))
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPRecorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_server():
    import sys

    handler = SMTPRecorder()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    # The server runs in a thread of the test process: with the default 5 ms GIL switch
    # interval the sender and the server wait on each other at every SMTP reply (2,500
    # announcements took twice as long). Production talks to a server in another process.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield handler
    sys.setswitchinterval(switch)
    controller.stop()


@pytest.fixture
def app_config(database_url, tmp_path):
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 1,  # nothing listens here unless a test starts smtp_server
        "BASE_URL": "http://localhost",
        "SERVER_NAME": None,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
    }


@pytest.fixture
def app(app_config, database_url):
    app = create_app(app_config)
    yield app
    app.extensions["portal_db"]["engine"].dispose()
    _empty_all_tables(database_url)


@contextlib.contextmanager
def recorded_statements(app, transactions: bool = True):
    """The SQL statements the app runs inside the block, in a list filled as they run
    (``transactions=False``: without BEGIN, COMMIT and ROLLBACK)."""
    engine = app.extensions["portal_db"]["engine"]
    statements: list[str] = []
    control = () if transactions else ("BEGIN", "COMMIT", "ROLLBACK")

    def listener(conn, cursor, statement, *args):
        if not (control and statement.startswith(control)):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def get_with_statements(app, client, path: str):
    """GET ``path`` with ``client``: the response and the SQL statements the app ran for it."""
    with recorded_statements(app) as statements:
        response = client.get(path)
    return response, statements


@pytest.fixture
def cache_dir(tmp_path):
    """A cache folder the apps of one test share, as workers share Redis in production."""
    return tmp_path / "cache"


@pytest.fixture
def kept_workers(app, app_config, cache_dir):
    """Makes more apps ("workers") on the test's database sharing ``cache_dir``, with parts
    of pages kept (``FRAGMENT_CACHE_SECONDS``); ``extra`` settings override. Disposed after."""
    made = []

    def make(**extra):
        config = dict(app_config, FRAGMENT_CACHE_SECONDS=300, CACHE_URL=f"file://{cache_dir}")
        worker = create_app(dict(config, **extra))
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.extensions["portal_db"]["engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """The database session of an app context held open for the test."""
    from portal.db import db

    with app.app_context():
        yield db.session


@pytest.fixture
def live_server(app_config, database_url, smtp_server):
    """The portal served on a free loopback port in a thread, with CSRF on as in production."""
    config = dict(app_config, WTF_CSRF_ENABLED=True, MAIL_PORT=smtp_server.port, TESTING=False)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.app = app
    server.url = app.config["BASE_URL"]
    yield server
    server.shutdown()
    app.extensions["portal_db"]["engine"].dispose()
    _empty_all_tables(database_url)
