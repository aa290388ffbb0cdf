"""Every page costs what it shows: statement counts do not change when the history grows tenfold.

The history builder of ``bench/history.py`` fills the database at 0.02× and again at 0.2× of
the accumulated history (2 and 20 past meetings, 40 and 400 people, 400 and 4,000
registrations …); every page of the sweep (``bench/sweep.py``: organiser's membership pages,
statistics, registration lists and searches, speakers, abstracts, archive, the personal-data
download and the exports, read to their end) must answer 200 with the same number of SQL
statements both times. ``make bench`` measures the same pages at 1×, 10× and 100×.
"""

from __future__ import annotations

import sqlalchemy as sa

from bench.history import build_history
from bench.sweep import PAGES, _Counter, _get, clients
from tests.conftest import _empty_all_tables


def _statements(app, scale: float) -> dict[str, tuple[int, int]]:
    engine = app.extensions["portal_db"]["engine"]
    data = build_history(engine, scale, password_hash="not-used: sessions are set directly")
    by_who = clients(app, data)
    out = {}
    for page in PAGES:
        path = page.path.format(event=data.event_slug, series=data.series_slug)
        _get(by_who[page.who], path)  # first request: anything done once per process
        with _Counter(engine) as counter:
            status, _body = _get(by_who[page.who], path)
        out[page.name] = (status, counter.n)
    return out


def test_statement_counts_do_not_grow_with_the_history(app, database_url):
    small = _statements(app, 0.02)
    _empty_all_tables(database_url)
    large = _statements(app, 0.2)
    assert {name: status for name, (status, _n) in small.items()} == dict.fromkeys(small, 200)
    assert large == small


def test_the_history_builder_writes_what_it_says(app):
    engine = app.extensions["portal_db"]["engine"]
    data = build_history(engine, 0.05, password_hash="not-used")
    with engine.connect() as conn:

        def count(table: str) -> int:
            return conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))

        assert count("events") == 5 + 1
        assert count("people") == 100 + 1  # and the organiser
        assert count("registrations") == 5 * 100 + 100
        assert count("speaker_profiles") == 20
        assert count("talks") == 5 * 5 + 4
        assert count("abstracts") == 5 * 3 + 20
        assert count("outbox_emails") == 100
        assert count("archive_items") == 10
        assert count("documents") == 100
        # The person of the data download has a registration at every past meeting.
        assert (
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM registrations WHERE person_id = :p AND event_id != :e"
                ),
                {"p": data.download_person_id, "e": data.event_id},
            )
            == 5
        )
        # Every account's email domain is filled in, as the model would.
        assert count("users WHERE email_domain = ''") == 0
    assert data.counts["registrations"] == 600


def test_next_page_paging_counts_nothing(app):
    from portal.accounts.models import Person
    from portal.db import db
    from portal.pagination import paginate_next
    from tests import factories as f

    with app.app_context():
        ids = [f.person(db.session).id for _ in range(5)]
        db.session.commit()
        stmt = sa.select(Person).order_by(Person.id)
        engine = app.extensions["portal_db"]["engine"]
        with _Counter(engine) as counter:
            first = paginate_next(db.session, stmt, 1, per_page=2)
        assert counter.n == 1  # no count
        assert [p.id for p in first.items] == ids[:2]
        assert (first.has_prev, first.has_next, first.pages, first.total) == (False, True, 2, None)
        last = paginate_next(db.session, stmt, 3, per_page=2)
        assert [p.id for p in last.items] == ids[4:]
        assert (last.has_prev, last.has_next, last.pages) == (True, False, 3)
        rows = paginate_next(db.session, sa.select(Person.id).order_by(Person.id), 2, 2, False)
        assert [r.id for r in rows.items] == ids[2:4] and rows.has_next


def _plans(app, job) -> list[str]:
    """SQLite's query plans of the statements ``job(session)`` runs."""
    from portal.db import db

    engine = app.extensions["portal_db"]["engine"]
    seen = []

    def listener(conn, cursor, statement, parameters, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    with app.app_context():
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            job(db.session)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        db.session.rollback()
        conn = db.session.connection()
        return [
            " ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p))
            for s, p in seen
        ]


def test_idle_workers_read_only_the_partial_indexes(app, database_url):
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL chooses by its statistics; the sweep times it
    from portal.mail.services import send_due
    from portal.payments.reconcile import reconcile_candidates

    build_history(app.extensions["portal_db"]["engine"], 0.02, password_hash="not-used")
    assert _plans(app, send_due) == [
        "SEARCH outbox_emails USING INDEX ix_outbox_emails_unsent "
        "(sent_at=? AND failed_at=? AND next_attempt_at<?) USE TEMP B-TREE FOR ORDER BY"
    ]
    assert _plans(app, reconcile_candidates) == ["SCAN payments USING INDEX ix_payments_pending"]


def test_speakers_csv_streams_each_speakers_current_affiliation(app, client):
    """The streamed CSV picks the affiliation ``current_affiliation`` would (open-ended or not
    yet ended, started last), and the person's own affiliation when none is current."""
    import csv
    import io
    from datetime import date, timedelta

    from portal.i18n import BilingualText
    from portal.speakers.models import Affiliation, current_affiliation
    from tests import test_speakers_support as support

    def org(name):
        return BilingualText(ja=name, en=name + " (en)")

    session = next(support.open_session(app))
    first = support.speaker(session, affiliation="自己申告の所属")
    later = date.today() + timedelta(days=30)
    session.add_all(
        [
            Affiliation(
                person_id=first.person_id, organisation=org("旧所属"), ended_on=date(2015, 3, 31)
            ),
            Affiliation(person_id=first.person_id, organisation=org("無期限"), started_on=None),
            Affiliation(
                person_id=first.person_id,
                organisation=org("現所属"),
                started_on=date(2020, 4, 1),
                ended_on=later,
            ),
            Affiliation(
                person_id=first.person_id, organisation=org("中間"), started_on=date(2016, 4, 1)
            ),
        ]
    )
    second = support.speaker(session, affiliation="自己申告の所属")
    session.add(
        Affiliation(person_id=second.person_id, organisation=org("旧"), ended_on=date(2001, 1, 1))
    )
    support.login(client, support.organiser(session))
    session.commit()
    session.expire_all()
    expected = current_affiliation(first.affiliations)
    response = client.get("/ja/organiser/speakers/export.csv")
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    by_id = {row[0]: row for row in rows[1:]}
    assert expected.organisation.ja == "現所属"
    assert by_id[str(first.person_id)][12:14] == ["現所属", "現所属 (en)"]
    assert by_id[str(second.person_id)][12:14] == ["自己申告の所属", ""]
    session.close()


def test_speaker_lists_are_not_counted(app, client):
    """Page 1 of many: "more than" and a next page, no count statement; the last page counts."""
    from portal.speakers.views import PER_PAGE
    from tests import test_speakers_support as support

    session = next(support.open_session(app))
    for _ in range(PER_PAGE + 3):
        support.speaker(session)
    support.login(client, support.organiser(session))
    session.commit()
    session.close()
    engine = app.extensions["portal_db"]["engine"]
    seen = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        first = client.get("/en/organiser/speakers/").get_data(as_text=True)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert not [s for s in seen if "count(" in s.lower()]
    assert f"More than {PER_PAGE} speakers found." in first
    assert "Page 1</span>" in first and 'rel="next"' in first
    last = client.get("/en/organiser/speakers/?page=2").get_data(as_text=True)
    assert f"{PER_PAGE + 3} speakers found." in last
    assert 'rel="next"' not in last and "Page 2 of 2" in last
