"""The attendance plugin: statistics per series and fiscal year, the page, chart, CSV and hooks."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from plugins.attendance import services
from plugins.attendance.importer import import_attendance, read_text
from plugins.attendance.models import MeetingAttendance
from portal import plugins
from portal.config import ROOT
from portal.db import db, utcnow
from portal.events.models import EventStatus, Series, SeriesPlugin
from tests import factories as f

REAL_FILE = ROOT / "plugins/attendance/data/study_group_attendance.csv"


def _import_real_file(session, **series_kw):
    series = f.series(session, slug="study-group", **series_kw)
    import_attendance(session, read_text(REAL_FILE), series)
    session.flush()
    return series


def _log_in(client, user_id: str) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


def _logout(client) -> None:
    with client.session_transaction() as s:
        s.clear()


@contextmanager
def _context(app):
    """Set up rows in an app context of their own (requests then get fresh sessions)."""
    with app.app_context():
        yield db.session
        db.session.commit()


@contextmanager
def _request(app, lang: str = "en"):
    """A request context for calling hooks, as a page under /<lang>/ would have it."""
    from flask import g

    with app.test_request_context(f"/{lang}/"):
        g.lang_code = lang
        yield


@contextmanager
def count_queries(app):
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    engine = app.extensions["portal_db"]["engine"]
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


# -- fiscal years and the statistics of a series ---------------------------------------------


def test_fiscal_year_runs_from_april_to_march():
    assert services.fiscal_year(date(2019, 4, 1)) == 2019
    assert services.fiscal_year(date(2020, 1, 10)) == 2019
    assert services.fiscal_year(date(2020, 3, 31)) == 2019
    assert services.fiscal_year(date(2020, 4, 1)) == 2020


def test_statistics_of_the_real_file(app, session):
    series = _import_real_file(session)

    stats = services.series_statistics(session, series, latest=False)  # all years
    rows = list(services.history_rows(session, series))

    assert stats.selected_year is None and stats.rows == []
    assert len(rows) == 23
    assert [r.number for r in rows][:3] == [1, 2, 3]
    assert [r.number for r in rows][-3:] == [91, 92, 93]
    by_number = {r.number: r for r in rows}
    assert by_number[10].cumulative == 359
    assert by_number[89].cumulative == 2116
    assert by_number[90].cumulative == 2116  # cancelled: nothing added
    assert by_number[93].cumulative == 2954
    assert by_number[90].fiscal_year == 2019  # March 2020 belongs to 2019年度
    t = stats.totals
    assert (t.meetings, t.cancelled, t.participants) == (22, 1, 2954)
    assert (t.company, t.university, t.government_other) == (1966, 642, 336)
    assert (t.onsite_participants, t.online_participants, t.cumulative) == (2116, 838, 2954)
    assert t.average == 134
    assert stats.missing == [(11, 80)]
    assert [
        (fy.year, fy.meetings, fy.cancelled, fy.participants, fy.online_participants, fy.cumulative)
        for fy in stats.fiscal_years
    ] == [
        (2002, 4, 0, 146, 0, 146),
        (2003, 5, 0, 172, 0, 318),
        (2004, 1, 0, 41, 0, 359),
        (2018, 5, 0, 940, 0, 1299),
        (2019, 4, 1, 817, 0, 2116),
        (2020, 3, 0, 838, 838, 2954),
    ]
    assert [r.number for r in rows if not r.figures.adds_up] == [92]
    # By default: the latest fiscal year, its meetings with the history's cumulative figure.
    latest = services.series_statistics(session, series)
    assert latest.selected_year == 2020
    assert [(r.number, r.cumulative) for r in latest.rows] == [
        (r.number, r.cumulative) for r in rows[-3:]
    ]
    assert latest.rows[-1].cumulative == 2954
    assert (latest.totals.meetings, latest.totals.participants) == (3, 838)
    assert latest.missing == [(11, 80)] and len(latest.fiscal_years) == 6


def test_statistics_of_one_fiscal_year(app, session):
    series = _import_real_file(session)

    stats = services.series_statistics(session, series, year=2019)

    assert stats.selected_year == 2019
    assert [r.number for r in stats.rows] == [86, 87, 88, 89, 90]
    assert (stats.totals.meetings, stats.totals.participants, stats.totals.cumulative) == (
        4,
        817,
        2116,
    )
    assert stats.missing == [(11, 80)]  # of the whole history
    assert len(stats.fiscal_years) == 6
    assert services.series_statistics(session, series, year=1990).selected_year == 2020
    assert services.series_statistics(session, series, 1990, latest=False).selected_year is None


def test_statistics_leave_out_drafts_and_meetings_without_figures(app, session):
    series = f.series(session)
    f.event(session, series, status=EventStatus.draft, starts_at=f.at(2020, 5, 1, 5))
    f.event(session, series, status=EventStatus.closed, starts_at=f.at(2020, 6, 1, 5))
    cancelled = f.event(session, series, status=EventStatus.cancelled, starts_at=f.at(2020, 7, 1))
    held = f.event(session, series, status=EventStatus.closed, starts_at=f.at(2020, 8, 1, 5))
    services.save_figures(session, held, services.Figures(registered=50, participants=40))

    stats = services.series_statistics(session, series)

    assert [r.event.id for r in stats.rows] == [cancelled.id, held.id]
    assert stats.rows[0].figures.cancelled is True
    assert stats.totals.participants == 40


def test_save_figures_twice_changes_nothing(app, session):
    event = f.event(session, status=EventStatus.closed, starts_at=f.at(2024, 5, 10, 5, 30))
    figures = services.Figures(registered=10, participants=8, company=8, onsite_participants=8)

    row, first = services.save_figures(session, event, figures)
    _, second = services.save_figures(session, event, figures)
    _, third = services.save_figures(
        session, event, services.Figures(registered=10, participants=9, company=9)
    )

    assert (first, second, third) == ("created", "unchanged", "changed")
    assert row.participants == 9
    assert row.onsite_participants is None


# -- who may see the page ---------------------------------------------------------------------


@pytest.fixture
def imported(app):
    """The real file imported; an organiser of the series, a member, an administrator."""
    with _context(app) as session:
        series = _import_real_file(session)
        f.enable_for_series(session, series, "attendance")
        other = f.series(session)
        ids = {
            "organiser": f.user(session, roles=(("organiser", series),)).get_id(),
            "other_organiser": f.user(session, roles=(("organiser", other),)).get_id(),
            "member": f.user(session, roles=(("member", series),)).get_id(),
            "admin": f.user(session, is_admin=True).get_id(),
        }
    return ids


def test_statistics_page_is_for_organisers_by_default(client, imported):
    url = "/en/series/study-group/statistics"
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert "/en/account/login" in anonymous.headers["Location"]
    for who, status in (
        ("member", 404),
        ("other_organiser", 404),
        ("organiser", 200),
        ("admin", 200),
    ):
        _log_in(client, imported[who])
        assert client.get(url).status_code == status, who
        assert client.get(url + ".csv").status_code == status, who
        assert client.get(url + "/chart.svg").status_code == status, who
    assert client.get("/en/series/no-such-series/statistics").status_code == 404


def test_statistics_page_is_public_when_the_series_setting_says_so(app, client, imported):
    """The plugin and its ``public`` setting belong to the series (a series plugin), set on
    the series' plugins page; off for the series, the page is not found, even for organisers."""
    url = "/ja/series/study-group/statistics"
    assert client.get(url).status_code == 302  # private by default: organisers log in
    _log_in(client, imported["organiser"])
    page = client.get("/en/organiser/series/study-group/plugins")
    assert page.status_code == 200 and 'data-plugin="attendance"' in page.text
    assert 'data-plugin="webinar"' not in page.text  # an event plugin: on the event's page
    r = client.post(
        "/en/organiser/series/study-group/plugins/attendance/settings",
        data={"plugin-attendance-public": "y"},
    )
    assert r.status_code == 302
    with _context(app) as session:
        series = session.scalar(sa.select(Series).where(Series.slug == "study-group"))
        row = session.scalar(sa.select(SeriesPlugin).where(SeriesPlugin.series_id == series.id))
        assert (row.plugin, row.enabled, row.settings) == ("attendance", True, {"public": True})
    _logout(client)
    page = client.get(url)
    assert page.status_code == 200
    assert "2,954" in page.text
    assert client.get("/en/series/study-group/statistics.csv").status_code == 200
    # Switched off for the series: gone for everyone.
    _log_in(client, imported["organiser"])
    r = client.post("/en/organiser/series/study-group/plugins/attendance", data={"enabled": "0"})
    assert r.status_code == 302
    assert client.get(url).status_code == 404
    _logout(client)
    assert client.get(url).status_code == 404


# -- the page, the chart and the CSV -----------------------------------------------------------


def test_hook_blueprints_attendance_statistics_page_in_english(client, imported):
    _log_in(client, imported["organiser"])

    page = client.get("/en/series/study-group/statistics")

    assert page.status_code == 200
    text = page.text
    assert "<h1>Attendance statistics</h1>" in text
    # The latest fiscal year, meeting by meeting.
    assert "Participants per meeting · FY2020" in text
    assert "Meeting 93" in text and "6 November 2020" in text
    assert "Meeting 89" not in text  # FY2019
    assert "2,502" in text  # on the mailing list at meeting 93
    assert "3 meetings held" in text
    assert "The sectors add up to 304." in text  # meeting 92, kept as reported
    # Every fiscal year, with the whole history's totals.
    assert "FY2019 (April 2019 – March 2020)" in text
    assert "2,954" in text and "1,966" in text and "2,116" in text
    assert '<td class="num">22 (1 cancelled)</td>' in text
    assert "No figures are recorded for meetings 11–80." in text
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in text
    assert "Cumulative participants" in text
    assert "<script" not in text.split("<svg", 1)[1].split("</svg>", 1)[0]
    cancelled = client.get("/en/series/study-group/statistics?fy=2019").text
    assert "Meeting 90" in cancelled and "Cancelled" in cancelled
    assert "4 meetings held" in cancelled and "1 cancelled" in cancelled


def test_statistics_page_in_japanese(client, imported):
    _log_in(client, imported["organiser"])

    page = client.get("/ja/series/study-group/statistics")

    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    assert "2020年11月6日" in page.text
    assert "2,954" in page.text


def test_statistics_page_per_fiscal_year_and_all_years(client, imported):
    _log_in(client, imported["organiser"])

    all_years = client.get("/en/series/study-group/statistics?fy=all")
    one_year = client.get("/en/series/study-group/statistics?fy=2019")
    unknown = client.get("/en/series/study-group/statistics?fy=1990")
    nonsense = client.get("/en/series/study-group/statistics?fy=abc")

    assert all_years.status_code == 200
    assert "Meeting 86" not in all_years.text  # no meeting rows: a row per fiscal year
    assert (
        all_years.text.count('<th scope="row"><a href="/en/series/study-group/statistics?fy=') == 6
    )
    assert '<option value="all" selected>' in all_years.text
    assert "Participants per fiscal year" in all_years.text  # the chart's axis
    assert "FY2018" in all_years.text.split("<svg", 1)[1]  # a bar per fiscal year
    assert one_year.status_code == 200
    assert "Meeting 86" in one_year.text and "Meeting 85" not in one_year.text
    assert "Participants per meeting · FY2019" in one_year.text
    assert '<option value="2019" selected>' in one_year.text
    assert "Participants per meeting · FY2020" in unknown.text  # the latest instead
    assert nonsense.status_code == 400  # a clear "bad argument" page, not the whole history


def test_statistics_csv_has_a_bom_and_headers_in_the_reader_language(app, client, imported):
    _log_in(client, imported["organiser"])

    response = client.get("/en/series/study-group/statistics.csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")
    assert 'filename="attendance-study-group-en.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == [
        "Meeting",
        "Date",
        "Fiscal year",
        "Registered",
        "On the mailing list",
        "Participants",
        "Company",
        "University",
        "Government & other",
        "On site",
        "Online",
        "Cumulative participants",
        "Cancelled",
        "Note",
    ]
    assert len(rows) == 25  # header, 23 meetings, totals
    assert rows[1] == [
        "1",
        "2002-09-20",
        "FY2002",
        "",
        "47",
        "43",
        "19",
        "23",
        "1",
        "43",
        "0",
        "43",
        "",
        "",
    ]
    assert rows[20] == [
        "90",
        "2020-03-06",
        "FY2019",
        "",
        "2224",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "2116",
        "Cancelled",
        "cancelled because of COVID-19",
    ]
    assert rows[-1] == [
        "Total",
        "",
        "",
        "",
        "",
        "2954",
        "1966",
        "642",
        "336",
        "2116",
        "838",
        "2954",
        "1",
        "",
    ]

    year = client.get("/en/series/study-group/statistics.csv?fy=2020")
    assert 'filename="attendance-study-group-fy2020-en.csv"' in year.headers["Content-Disposition"]
    assert len(list(csv.reader(io.StringIO(year.data.decode("utf-8-sig"))))) == 5

    with _context(app) as session:
        session.scalars(sa.select(MeetingAttendance)).first().note = "=HYPERLINK(1)"
    first = client.get("/en/series/study-group/statistics.csv").data.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(first)))[1][-1] == "'=HYPERLINK(1)"

    ja = client.get("/ja/series/study-group/statistics.csv")
    assert ja.data.startswith(b"\xef\xbb\xbf")
    assert 'filename="attendance-study-group-ja.csv"' in ja.headers["Content-Disposition"]


def test_chart_svg_has_bars_and_a_cumulative_line_on_a_second_axis(client, imported):
    _log_in(client, imported["organiser"])

    response = client.get("/en/series/study-group/statistics/chart.svg?fy=2019")

    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.text
    assert svg.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert 'class="axis y2' in svg  # the right-hand axis
    # the cumulative line and the list's (登録人数)
    assert svg.count('class="line reactive nofill"') == 2
    assert "On site" in svg and "Online" in svg and "Cumulative participants" in svg
    assert "90 (cancelled)" in svg
    # one bar per meeting of FY2019 (86–90) in each of the two stacked series
    assert svg.count('class="rect reactive tooltip-trigger"') == 5 + 5
    assert "2,116" in svg  # the last cumulative value in the tooltips

    history = client.get("/en/series/study-group/statistics/chart.svg?fy=all").text
    assert "Participants per fiscal year" in history and "Fiscal year" in history
    assert history.count('class="line reactive nofill"') == 1  # cumulative (no list per year)
    assert history.count('class="rect reactive tooltip-trigger"') == 6 + 6  # six fiscal years
    assert "FY2002" in history and "FY2020" in history and "2,954" in history


def test_statistics_page_queries_stay_constant(app, client, monkeypatch):
    with _context(app) as session:
        series = f.series(session, slug="study-group")
        f.enable_for_series(session, series, "attendance")
        organiser = f.user(session, roles=(("organiser", series),))
        user_id = organiser.get_id()
        # a past meeting without saved figures: counted live from registrations
        f.event(
            session, series, number=1000, status=EventStatus.closed, starts_at=f.at(2001, 1, 1, 5)
        )
        series_id = series.id

    def add_meetings(start, stop):
        with _context(app) as session:
            for n in range(start, stop):
                event = f.event(
                    session,
                    session.get(Series, series_id),
                    number=n,
                    status=EventStatus.closed,
                    starts_at=f.at(2002, 1, 1, 5) + timedelta(days=60 * n),
                )
                online = n * 2 if n % 3 == 0 else 0
                services.save_figures(
                    session,
                    event,
                    services.Figures(
                        registered=100 + n,
                        participants=n * 2,
                        company=n,
                        university=n,
                        online_participants=online,
                        onsite_participants=n * 2 - online,
                    ),
                )

    _log_in(client, user_id)
    monkeypatch.setattr(services, "HISTORY_CHUNK", 4)  # the CSV is read 4 meetings at a time
    counts = {}
    for start, stop in ((1, 11), (11, 41)):
        add_meetings(start, stop)
        with count_queries(app) as statements:
            page = client.get("/en/series/study-group/statistics")
        assert page.status_code == 200
        with count_queries(app) as csv_statements:
            whole = client.get("/en/series/study-group/statistics.csv")
            rows = list(csv.reader(io.StringIO(whole.get_data(as_text=True).lstrip("\ufeff"))))
        counts[stop - 1] = (len(statements), len(csv_statements))
        assert len(rows) == 1 + (stop - 1) + 1  # header, meetings 1…stop-1, total
    assert "Meeting 40" in page.text
    assert [r[0] for r in rows[1:-1]] == [str(n) for n in range(1, 41)]  # none left out
    assert rows[-1][0] == "Total" and rows[-1][5] == str(sum(n * 2 for n in range(1, 41)))
    assert counts[10] == counts[40]


# -- hooks ------------------------------------------------------------------------------------


def _past_event_with_figures(session, **figures):
    series = f.series(session)
    event = f.event(session, series, status=EventStatus.closed, starts_at=f.at(2020, 9, 25, 5))
    values = dict(registered=2474, participants=314, company=230, university=30)
    values.update(government_other=44, online_participants=314, onsite_participants=0)
    values.update(figures)
    services.save_figures(session, event, services.Figures(**values))
    return series, event


def test_hook_dashboard_panels_attendance(app, session):
    series, event = _past_event_with_figures(session)
    organiser = f.user(session, roles=(("organiser", series),))
    member = f.user(session)
    with _request(app):
        assert plugins.call_event_hook("dashboard_panels", event, user=organiser) == []
        f.enable(session, event, "attendance")
        plugins.forget(event)
        panels = plugins.call_event_hook("dashboard_panels", event, user=organiser)
        assert plugins.call_event_hook("dashboard_panels", event, user=member) == []
    assert len(panels) == 1
    html = str(panels[0])
    assert 'data-plugin="attendance"' in html
    assert "2,474" in html and "314" in html and "230" in html
    assert "The sectors add up to 304, not to the 314 participants" in html
    assert f"/en/series/{series.slug}/statistics" in html


def test_hook_event_sections_attendance(app, session):
    series, event = _past_event_with_figures(session)
    upcoming = f.event(session, series)
    with pytest.raises(services.NotHeld):
        services.save_figures(session, upcoming, services.Figures(registered=5))
    anonymous = None
    with _request(app):
        row = f.enable(session, event, "attendance")  # for the series: private
        plugins.forget(event)
        assert plugins.call_event_hook("event_sections", event, user=anonymous) == []
        row.settings = {"public": True}
        session.flush()
        plugins.forget(event)
        plugins.forget(upcoming)
        assert plugins.call_event_hook("event_sections", upcoming, user=anonymous) == []
        sections = plugins.call_event_hook("event_sections", event, user=anonymous)
    assert len(sections) == 1
    html = str(sections[0])
    assert "<h2>Attendance figures</h2>" in html
    assert "<dd>314</dd>" in html and "<dd>2,474</dd>" in html


def test_hook_event_sections_attendance_on_the_event_page(app, client):
    with _context(app) as session:
        _, event = _past_event_with_figures(session)
        f.enable(session, event, "attendance", public=True)
        slug = event.slug
    page = client.get(f"/en/events/{slug}/")
    assert page.status_code == 200
    assert 'data-plugin="attendance"' in page.text
    assert "<dd>2,474</dd>" in page.text


def test_hook_event_tabs_attendance(app, session):
    series, event = _past_event_with_figures(session)
    organiser = f.user(session, roles=(("organiser", series),))
    f.enable(session, event, "attendance")
    with _request(app):
        assert plugins.call_event_hook("event_tabs", event, user=None) == []
        tabs = plugins.call_event_hook("event_tabs", event, user=organiser)
    assert [(t.label, t.url, t.plugin) for t in tabs] == [
        ("Attendance statistics", f"/en/series/{series.slug}/statistics", "attendance")
    ]


def test_hook_cli_commands_attendance_record_without_registrations(app, runner, session):
    event = f.event(session, status=EventStatus.closed)
    session.commit()
    result = runner.invoke(args=["attendance", "record", "--event", event.slug])
    assert result.exit_code == 1
    assert f"{event.slug} has no registrations to count." in result.output


# -- figures from the portal's registrations --------------------------------------------------


def _registrations(session, event, *specs):
    """specs: (state, mode, sector) for one registration each."""
    models = pytest.importorskip("portal.registration.models")
    for state, mode, sector in specs:
        person = f.person(session, sector=sector)
        session.add(
            models.Registration(
                event_id=event.id,
                person_id=person.id,
                attendance_mode=mode,
                state=state,
                currency="JPY",
            )
        )
    session.flush()


SPECS = (
    ("attended", "onsite", "company"),
    ("attended", "onsite", "company"),
    ("attended", "online", "university"),
    ("attended", "online", None),  # sector not known
    ("confirmed", "onsite", "government_other"),  # did not come
    ("waitlisted", "onsite", "company"),
    ("pending_payment", "online", "company"),
    ("cancelled", "online", "university"),
)


def test_figures_from_registrations(app, session):
    event = f.event(session, status=EventStatus.closed, starts_at=utcnow() - timedelta(days=2))
    assert services.figures_from_registrations(session, event) is None
    _registrations(session, event, *SPECS)

    figures = services.figures_from_registrations(session, event)

    assert figures == services.Figures(
        registered=7,
        participants=4,
        company=2,
        university=1,
        government_other=0,
        online_participants=2,
        onsite_participants=2,
        cancelled=False,
        source="portal",
    )
    assert figures.adds_up is False


def test_live_figures_show_in_statistics_until_saved(app, client):
    pytest.importorskip("portal.registration.models")
    with _context(app) as session:
        series = f.series(session)
        organiser = f.user(session, roles=(("organiser", series),))
        event = f.event(
            session, series, status=EventStatus.closed, starts_at=utcnow() - timedelta(days=2)
        )
        _registrations(session, event, *SPECS)
        f.enable(session, event, "attendance")
        user_id, slug, series_slug = organiser.get_id(), event.slug, series.slug
    _log_in(client, user_id)

    before = client.get(f"/en/series/{series_slug}/statistics")
    assert before.status_code == 200
    assert "1 meeting held" in before.text
    assert '<td class="num">7</td>' in before.text

    saved = client.post(f"/en/events/{slug}/attendance/record")
    assert saved.status_code == 302
    with app.app_context():
        row = db.session.scalar(sa.select(MeetingAttendance))
        assert (row.source.value, row.registered, row.participants) == ("portal", 7, 4)
        assert (row.onsite_participants, row.online_participants) == (2, 2)
    again = client.post(f"/en/events/{slug}/attendance/record", data={"next": "/en/"})
    assert again.headers["Location"] == "/en/"


def test_record_is_for_organisers_of_the_series_only(app, client):
    with _context(app) as session:
        event = f.event(session, status=EventStatus.closed)
        f.enable(session, event, "attendance")
        member = f.user(session)
        slug, user_id = event.slug, member.get_id()
    assert client.post(f"/en/events/{slug}/attendance/record").status_code == 404
    _log_in(client, user_id)
    assert client.post(f"/en/events/{slug}/attendance/record").status_code == 404


def test_figures_of_settled_meetings_are_saved_by_a_scheduled_job(app):
    """A meeting that ended two weeks ago gets its live count saved once (job
    ``attendance-figures``, declared through ``scheduled_jobs``); recent meetings, meetings
    with figures, drafts and series without the plugin are left alone."""
    from portal.tasks.jobs import jobs, run_job

    now = utcnow()
    closed = EventStatus.closed
    with _context(app) as session:
        series = f.series(session)
        f.enable_for_series(session, series, "attendance")
        other = f.series(session)  # the plugin is off here
        settled = f.event(session, series, starts_at=now - timedelta(days=20), status=closed)
        recent = f.event(session, series, starts_at=now - timedelta(days=3), status=closed)
        known = f.event(session, series, starts_at=now - timedelta(days=40), status=closed)
        draft = f.event(
            session, series, starts_at=now - timedelta(days=30), status=EventStatus.draft
        )
        elsewhere = f.event(session, other, starts_at=now - timedelta(days=20))
        empty = f.event(session, series, starts_at=now - timedelta(days=25), status=closed)
        attended = ("attended", "onsite", "company")
        for event in (settled, recent, known, draft, elsewhere):
            _registrations(
                session, event, attended, attended, ("confirmed", "online", "university")
            )
        services.save_figures(session, known, services.Figures(registered=9, participants=7))
        ids = {
            name: e.id
            for name, e in dict(
                settled=settled,
                recent=recent,
                known=known,
                draft=draft,
                elsewhere=elsewhere,
                empty=empty,
            ).items()
        }
    with app.app_context():
        assert jobs()["attendance-figures"].every == timedelta(days=1)
        assert run_job(db.session, "attendance-figures") == "figures saved for 1 meeting(s)"
        rows = {
            r.event_id: (r.registered, r.participants, r.company)
            for r in db.session.scalars(sa.select(MeetingAttendance))
        }
        assert rows == {ids["settled"]: (3, 2, 2), ids["known"]: (9, 7, 0)}
        assert run_job(db.session, "attendance-figures") == "figures saved for 0 meeting(s)"


def test_missing_numbers_are_looked_for_only_when_some_are_missing(app, session):
    """The totals count the numbered meetings; runs of missing numbers are searched (one more
    statement) only when fewer meetings are numbered than their range holds, and a meeting
    counted live from its registrations fills its number."""
    series = f.series(session, slug="numbers")
    f.enable_for_series(session, series, "attendance")
    start = utcnow().replace(microsecond=0) - timedelta(days=400)

    def meeting(number: int, figures: bool = True):
        event = f.event(
            session,
            series,
            number=number,
            status=EventStatus.closed,
            starts_at=start + timedelta(days=number),
        )
        if figures:
            session.add(
                MeetingAttendance(event_id=event.id, source="import", registered=10, participants=8)
            )
        return event

    for number in (1, 2, 3, 5):
        meeting(number)
    live = meeting(4, figures=False)  # counted live from its registrations: 4 is not missing
    _registrations(session, live, ("attended", "onsite", "company"))
    session.flush()
    engine = session.get_bind()

    def statements() -> tuple[int, list]:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            stats = services.series_statistics(session, series)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        return len(seen), stats.missing

    contiguous, missing = statements()
    assert missing == []
    meeting(7)
    session.flush()
    with_gaps, missing = statements()
    assert missing == [(6, 6)]
    assert with_gaps == contiguous + 1


def test_a_fiscal_year_with_many_meetings_is_shown_a_page_at_a_time(client, imported, monkeypatch):
    from plugins.attendance import views

    monkeypatch.setattr(views, "MEETINGS_PER_PAGE", 2)
    _log_in(client, imported["organiser"])
    url = "/en/series/study-group/statistics?fy=2019"

    pages = [client.get(url + (f"&page={n}" if n > 1 else "")) for n in (1, 2, 3, 99)]

    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    shown = [[n for n in range(84, 94) if f">Meeting {n}<" in p.text] for p in pages]
    assert shown == [[86, 87], [88, 89], [90], [90]]  # a page too far: the last one
    assert "Page 1 of 3" in pages[0].text and "Page 3 of 3" in pages[3].text
    nav = pages[0].text.split('rel="next" href="', 1)[1].split('"', 1)[0]
    assert "fy=2019" in nav and "page=2" in nav
    # The subtotal and the cumulative column count the whole year on every page.
    footers = {p.text.split("<tfoot>", 1)[1].split("</tfoot>", 1)[0] for p in pages}
    assert len(footers) == 1
    assert "FY2019" in pages[1].text.split("<svg", 1)[1]  # the chart of the page's meetings


def test_figures_are_grouped_as_babel_groups_them(app):
    from babel.numbers import format_decimal

    from plugins.attendance.views import format_number

    for lang, locale in (("ja", "ja_JP"), ("en", "en_US")):
        with _request(app, lang):
            for value in (0, 7, 999, 1000, 12345, 1234567, -1500, 10**9):
                assert format_number(value) == format_decimal(value, locale=locale)
            assert format_number(None) == "–"
