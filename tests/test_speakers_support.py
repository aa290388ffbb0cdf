"""Helpers shared by the speaker tests (no tests here).

``dbs`` is used instead of conftest's ``session`` fixture by the speaker tests: a session of
its own that is *not* tied to a pushed app context. With conftest's fixture the test client
reuses the test's app context, so requests share the test's ``g`` (its database session and
Flask-Login's cached user) and do not behave as in production. Here every request gets its
own app context. Commit before a request (so it sees the data) and after it (so the test
sees the request's changes: a new transaction, objects reloaded). Service calls that need the
app (templates, url_for, the upload folder) run inside ``with ctx(app):``.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from itertools import count

import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session

from portal.i18n import BilingualText
from portal.speakers import search, services
from portal.speakers.models import Affiliation, SpeakerProfile
from tests import factories as f

_seq = count(1)


def open_session(app):
    """The body of each speaker test module's ``dbs`` fixture."""
    engine = app.extensions["portal_db"]["engine"]
    # Plain BEGIN on SQLite: the test does not hold the write lock while a request runs.
    s = Session(bind=engine.execution_options(read_only=True), expire_on_commit=True)
    try:
        yield s
    finally:
        s.close()


def ctx(app):
    """A request context for calling services that render templates or build URLs."""
    return app.test_request_context("/", base_url=app.config["BASE_URL"])


def login(client, user) -> None:
    """Log a user in through Flask-Login's session (independent of the log-in page)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def organiser(session, **kw):
    return f.user(session, is_admin=False, roles=(("organiser", None),), **kw)


def speaker(
    session,
    *,
    consent: bool = True,
    organisation: BilingualText | None = None,
    biography: BilingualText | None = None,
    self_introduction: BilingualText | None = None,
    **person_kw,
) -> SpeakerProfile:
    """A person with a speaker profile (and an affiliation when given).

    Unlike ``factories.person`` the names are unique and there is no kana reading unless
    given, so that records are not taken for duplicates of each other.
    """
    n = next(_seq)
    defaults = dict(
        family_name="講演",
        given_name=f"者{n}",
        family_name_kana="",
        given_name_kana="",
        romanized_name=f"Speaker Number{n}",
        email=f"speaker{n}@example.org",
        affiliation="",
    )
    person = f.person(session, **{**defaults, **person_kw})
    profile = services.ensure_profile(session, person)
    profile.publish_consent = consent
    profile.biography = biography or BilingualText()
    profile.self_introduction = self_introduction or BilingualText()
    session.flush()
    if organisation is not None:
        session.add(Affiliation(person_id=person.id, organisation=organisation))
        session.flush()
    search.refresh(session, [person.id])
    session.flush()
    return profile


@contextmanager
def count_queries(app):
    """Count the SQL statements run inside the block: ``with count_queries(app) as n: ...``."""
    engine = app.extensions["portal_db"]["engine"]
    counter = [0]

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK")):
            counter[0] += 1

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def image_bytes(fmt: str = "PNG", size=(1200, 900), mode="RGB", **save) -> bytes:
    image = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()
