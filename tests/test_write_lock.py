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


def _queue_is_free(app) -> bool:
    """Whether a writer could take its place in the queue (``<database>-writer``) now."""
    import fcntl
    import os

    path = app.extensions["portal_db"]["engine"].url.database + "-writer"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_writers_queue_in_the_kernel_until_commit_or_rollback(sqlite_app):
    app = sqlite_app
    engine = app.extensions["portal_db"]["engine"]
    with app.app_context():
        f.event(db.session)
        db.session.commit()
    assert _queue_is_free(app)
    with app.test_request_context("/", method="GET"):
        db.session.execute(sa.select(Event.id)).all()  # a reading transaction: no place
        assert _queue_is_free(app)
    for end in ("commit", "rollback"):
        with engine.connect() as conn:
            conn.execute(sa.select(Event.id)).all()  # BEGIN IMMEDIATE: first in the queue
            assert not _queue_is_free(app)
            assert not _other_writer_can_begin(app)
            getattr(conn, end)()
            assert _queue_is_free(app)
            assert _other_writer_can_begin(app)


def test_a_waiting_writer_goes_on_when_the_holder_commits(sqlite_app):
    import threading

    app = sqlite_app
    engine = app.extensions["portal_db"]["engine"]
    with app.app_context():
        event = f.event(db.session)
        db.session.commit()
        event_id = event.id
    order = []
    with engine.connect() as holder:
        holder.execute(sa.update(Event).where(Event.id == event_id).values(number=1))

        def second():
            with engine.begin() as conn:  # waits for its place
                order.append("second began")
                conn.execute(sa.update(Event).where(Event.id == event_id).values(number=2))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and order == []  # still waiting
        order.append("holder commits")
        holder.commit()
    thread.join(timeout=10)
    assert order == ["holder commits", "second began"]
    with engine.connect() as conn:
        assert conn.scalar(sa.select(Event.number).where(Event.id == event_id)) == 2


def test_a_second_connection_of_the_same_thread_does_not_wait_for_itself(sqlite_app):
    """It meets SQLite's own lock instead, which gives up after its busy timeout."""
    app = sqlite_app
    engine = app.extensions["portal_db"]["engine"]
    from portal.db import QueuedWriterConnection, _sqlite_begin, _sqlite_connect

    impatient = sa.create_engine(engine.url, connect_args={"factory": QueuedWriterConnection})
    sa.event.listen(impatient, "connect", _sqlite_connect)
    sa.event.listen(
        impatient, "connect", lambda dbapi, _r: dbapi.execute("PRAGMA busy_timeout=200")
    )
    sa.event.listen(impatient, "begin", _sqlite_begin)
    try:
        with engine.connect() as holder:
            holder.execute(sa.select(Event.id)).all()
            with impatient.connect() as nested, pytest.raises(sa.exc.OperationalError):
                nested.execute(sa.select(Event.id)).all()
            holder.rollback()
        assert _queue_is_free(app)
    finally:
        impatient.dispose()
