"""SQLite's write lock is taken only for the writing part of a registration (portal/db.py:
``defer_write_lock`` / ``take_write_lock``), so the rush is not serialised on reading."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.events.models import Event
from tests import factories as f


def _other_writer_can_begin(app) -> bool:
    path = app.extensions["portal_db"]["engine"].url.database
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


@pytest.fixture
def sqlite_app(app):
    if app.extensions["portal_db"]["engine"].dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    return app


def test_a_deferred_request_reads_without_the_lock_and_then_takes_it(sqlite_app):
    app = sqlite_app
    with app.app_context():
        event = f.event(db.session)
        db.session.commit()
        event_id = event.id
    with app.test_request_context("/", method="POST"):
        db.defer_write_lock()
        session = db.session
        assert session.get(Event, event_id) is not None  # reading
        assert _other_writer_can_begin(app)
        db.take_write_lock(session)
        session.execute(sa.select(Event.id)).all()
        assert not _other_writer_can_begin(app)
        session.get(Event, event_id).venue = None
        session.commit()
        assert _other_writer_can_begin(app)


def test_an_ordinary_writing_request_holds_the_lock_from_its_first_query(sqlite_app):
    app = sqlite_app
    with app.app_context():
        f.event(db.session)
        db.session.commit()
    with app.test_request_context("/", method="POST"):
        db.session.execute(sa.select(Event.id)).all()
        assert not _other_writer_can_begin(app)
        db.take_write_lock(db.session)  # nothing to do: already holding it
        assert not _other_writer_can_begin(app)
        db.session.rollback()


def test_taking_the_lock_after_changes_is_refused(sqlite_app):
    app = sqlite_app
    with app.app_context():
        event = f.event(db.session)
        db.session.commit()
        event_id = event.id
    with app.test_request_context("/", method="POST"):
        db.defer_write_lock()
        db.session.get(Event, event_id).venue = None
        with pytest.raises(RuntimeError):
            db.take_write_lock(db.session)
        db.session.rollback()
