"""The database: SQLAlchemy 2 engine, one session per app context, and the declarative Base."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def dialect_index(name: str, *expressions, **dialect_options: dict) -> sa.Index:
    """An index with options of one database only, e.g. ``postgresql={"using": "gin"}`` or
    ``sqlite={"where": ...}``, as ``sa.Index(name, ..., postgresql_using="gin")`` makes it.

    ``postgresql_*`` keyword arguments make SQLAlchemy import its PostgreSQL dialect (2 MB of
    every worker) when the model is defined, on SQLite too (and ``sqlite_*`` the SQLite dialect
    on PostgreSQL). Here the options wait in ``Index.info`` and are given to the index when its
    table is created on that database (a ``before_create`` listener of every ``Table``). The
    migrations write the same indexes with the keyword arguments; ``tests/test_core.py`` checks
    that both agree on SQLite and on PostgreSQL.
    """
    index = sa.Index(name, *expressions)
    index.info["dialect_options"] = dialect_options
    return index


@sa.event.listens_for(sa.Table, "before_create")
def _give_indexes_their_dialect_options(table, connection, **_kw) -> None:
    dialect = connection.dialect.name
    for index in table.indexes:
        options = index.info.get("dialect_options", {}).get(dialect)
        if options:
            index.dialect_options[dialect].update(options)


def utcnow() -> datetime:
    return datetime.now(UTC)


_INSERTS: dict[sa.Table, sa.Insert] = {}


def insert_now(session: Session, obj, **execution_options) -> None:
    """Write a new ORM object with one plain ``INSERT`` at once, then put it into the session
    as the persistent row it is (a registration and its ticket, under the event's lock: the
    ORM's flush of them cost more than the rest of their writing; docs/performance.md).

    Columns left None take their Python default; every column is then set on the object, so
    nothing is read back. The caller sets the foreign keys (the ORM would copy them from the
    relationships at its flush). ``execution_options`` go with the statement
    (``pagecache.SCOPE_OPTION``).
    """
    table = type(obj).__table__
    statement = _INSERTS.get(table)
    if statement is None:
        [key] = table.primary_key.columns
        statement = _INSERTS[table] = sa.insert(table).returning(key)
    values = {}
    for column in table.columns:
        if column.primary_key:
            continue
        value = getattr(obj, column.key)
        default = column.default
        if value is None and default is not None and (default.is_scalar or default.is_callable):
            value = default.arg(None) if default.is_callable else default.arg
        setattr(obj, column.key, value)
        values[column.key] = value
    pk = session.execute(statement, values, execution_options=execution_options).scalar_one()
    setattr(obj, table.primary_key.columns[0].key, pk)
    make_transient_to_detached(obj)
    session.add(obj)


class UTCDateTime(sa.TypeDecorator):
    """An aware datetime stored as UTC; SQLite and PostgreSQL give back the same value."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_writing = threading.local()  # how many writer queue places this thread holds


class QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection that queues for the write lock in the kernel.

    SQLite lets one transaction write at a time. A connection that finds the write lock taken
    sleeps and tries again (``busy_timeout``: 1, 2, 5 … then 100 ms naps), so when the holder
    commits, the lock stays free until some sleeper wakes up, and with many writers waiting a
    newcomer that happens to try at the right moment overtakes those who wait longer. In the
    registration rush (16 requests at once, docs/performance.md) that cost about a third of the
    throughput. Here a writing transaction first takes an exclusive ``flock`` on
    ``<database>-writer`` (next to ``-wal`` and ``-shm``): waiters sleep in the kernel, which
    wakes one as soon as the holder commits or rolls back. A process that dies releases it.
    Anything else writing the file (the sqlite3 shell, another program) still meets SQLite's
    own lock and waits as before; so does a second connection of a thread that already holds
    a place (it would otherwise wait for itself).
    """

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        path = os.fspath(database) if isinstance(database, str | os.PathLike) else ""
        memory = path in ("", ":memory:") or path.startswith("file:")
        self._writer_path = None if memory else path + "-writer"
        self._writer_fd: int | None = None
        self._holds_writer = False

    def queue_for_writing(self) -> None:
        """Wait for this connection's turn to write (before ``BEGIN IMMEDIATE``)."""
        if self._holds_writer or self._writer_path is None or getattr(_writing, "n", 0):
            return
        if self._writer_fd is None:
            try:
                self._writer_fd = os.open(self._writer_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:  # a read-only folder: SQLite's own lock only
                self._writer_path = None
                return
        fcntl.flock(self._writer_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._holds_writer = True
        _writing.n = getattr(_writing, "n", 0) + 1

    def leave_writing(self) -> None:
        if self._holds_writer:
            self._holds_writer = False
            _writing.n = max(0, getattr(_writing, "n", 1) - 1)
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    def commit(self):
        try:
            return super().commit()
        finally:
            self.leave_writing()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self.leave_writing()

    def close(self):
        try:
            self.leave_writing()
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None
        finally:
            super().close()


def _sqlite_connect(dbapi_connection, _record):
    # Let SQLAlchemy's "begin" event, not the sqlite3 module, start transactions.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database and a crash of the portal loses nothing;
    # only a power cut may lose the last commits. FULL would fsync at every commit while the
    # write lock is held (about half of a registration's time under the lock in the rush).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn):
    # A writing transaction takes SQLite's write lock at BEGIN, so that check-then-write
    # (capacity, sequence numbers) is serialised; a reading one (GET pages) does not, nor
    # does the reading first part of a request that called ``defer_write_lock()``.
    options = conn.get_execution_options()
    if options.get("read_only") or options.get("defer_write_lock"):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi_connection = conn.connection.dbapi_connection
    queued = isinstance(dbapi_connection, QueuedWriterConnection)
    if queued:
        dbapi_connection.queue_for_writing()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if queued:
            dbapi_connection.leave_writing()
        raise


def make_engine(url: str, settings: dict | None = None) -> sa.Engine:
    """The engine; SQL parameters (emails, names) never reach logs or error messages.

    On PostgreSQL: a connect timeout, a statement timeout and a pool timeout, so a hung
    database makes requests fail fast (503) instead of hanging workers.
    """
    settings = settings or {}
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "factory": QueuedWriterConnection},
            hide_parameters=True,
        )
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    statement_ms = int(settings.get("DB_STATEMENT_TIMEOUT_MS", 30000))
    return sa.create_engine(
        url,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=int(settings.get("DB_POOL_SIZE", 5)),
        max_overflow=int(settings.get("DB_MAX_OVERFLOW", 5)),
        pool_timeout=int(settings.get("DB_POOL_TIMEOUT", 10)),
        connect_args={
            "connect_timeout": int(settings.get("DB_CONNECT_TIMEOUT", 5)),
            "options": f"-c statement_timeout={statement_ms}",
        },
    )


class Database:
    """Flask extension: ``db.session`` is the session of the current app context."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"], app.config)
        app.extensions["portal_db"] = {
            "engine": engine,
            "sessionmaker": sessionmaker(bind=engine, expire_on_commit=False),
            "reader": sessionmaker(
                bind=engine.execution_options(read_only=True), expire_on_commit=False
            ),
            "deferred": sessionmaker(
                bind=engine.execution_options(defer_write_lock=True), expire_on_commit=False
            ),
        }
        app.teardown_appcontext(self._close)

    @property
    def engine(self) -> sa.Engine:
        return current_app.extensions["portal_db"]["engine"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            ext = current_app.extensions["portal_db"]
            reading = has_request_context() and request.method in {"GET", "HEAD", "OPTIONS"}
            kind = "reader" if reading else "sessionmaker"
            if not reading and g.get("db_defer_write_lock"):
                kind = "deferred"
            g.db_session = ext[kind]()
        return g.db_session

    @staticmethod
    def defer_write_lock() -> None:
        """This request reads first and writes only after ``take_write_lock`` (call it before
        the first query). On SQLite the write lock, which serialises every writer of the
        site, is then held only for the writing part, not while the request reads and checks
        its input (the registration rush: docs/performance.md)."""
        if "db_session" not in g:
            g.db_defer_write_lock = True

    @staticmethod
    def take_write_lock(session: Session) -> None:
        """Begin holding SQLite's write lock, if this session has only read so far.

        A deferred SQLite transaction cannot safely turn into a writing one (another writer
        may have committed since it began reading), so the reading transaction ends here and
        a new one begins with ``BEGIN IMMEDIATE``; rows read before may have changed, so
        callers re-read what they check (``lock_event`` does). Elsewhere it does nothing.
        """
        bind = session.get_bind()
        if bind.dialect.name != "sqlite":
            return
        if session.in_transaction():
            if not session.connection().get_execution_options().get("defer_write_lock"):
                return  # already holding the write lock
            if session.new or session.dirty or session.deleted:
                raise RuntimeError("take_write_lock() after changes: they would lose the lock")
            session.commit()  # ends the reading transaction (nothing to write)
        elif not bind.get_execution_options().get("defer_write_lock"):
            return
        session.connection(execution_options={"defer_write_lock": False})

    @staticmethod
    def _close(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()


def session_of(obj) -> Session:
    """The session an ORM object belongs to (a CLI command's or a test's), else the request's:
    for hooks that receive a row but no session (``personal_data``, ``forget_person``)."""
    from sqlalchemy.orm import object_session

    return object_session(obj) or db.session


def follow_merges(session: Session, key, merged_into, start: int) -> int:
    """The record a merged one leads to: from ``start``, follow ``merged_into`` (the column
    naming the record it was merged into, looked up by the ``key`` column) until a record
    that was not merged; a loop stops where it closes, and an unknown id leads to itself."""
    seen = set()
    current = start
    while current not in seen:
        seen.add(current)
        into = session.scalar(sa.select(merged_into).where(key == current))
        if into is None:
            return current
        current = into
    return current
