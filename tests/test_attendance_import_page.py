"""The organiser's import page: CSV (UTF-8 or Shift_JIS) or .xlsx, English or Japanese headers,
a dry-run preview, then the import; rows match by number AND date; only meetings held."""

from __future__ import annotations

import io
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from openpyxl import Workbook

from plugins.attendance.importer import import_attendance, parse
from plugins.attendance.models import MeetingAttendance
from portal.config import ROOT
from portal.db import db, utcnow
from portal.events.models import Event, Series
from tests import factories as f

HISTORY = ROOT / "plugins/attendance/data/study_group_attendance.csv"
JA_HEADER = "開催回,開催日,登録人数,参加者数,企業関係者,大学関係者,官庁他,開催形式,備考"


@contextmanager
def _context(app):
    with app.app_context():
        yield db.session
        db.session.commit()


def _log_in(client, user_id: str) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


def _setup(app):
    with _context(app) as session:
        series = f.series(session, slug="study-group")
        f.enable_for_series(session, series, "attendance")
        organiser = f.user(session, roles=(("organiser", series),)).get_id()
        member = f.user(session, roles=(("member", series),)).get_id()
    return organiser, member


def _figures(app):
    with _context(app) as session:
        return {
            e.number: row
            for row, e in session.execute(sa.select(MeetingAttendance, Event).join(Event))
        }


def _upload(client, data: bytes, name: str, lang="en"):
    return client.post(
        f"/{lang}/series/study-group/statistics/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_import_page_is_for_organisers_only(app, client):
    organiser, member = _setup(app)
    assert client.get("/en/series/study-group/statistics/import").status_code == 302  # log in
    _log_in(client, member)
    assert client.get("/en/series/study-group/statistics/import").status_code == 404
    _log_in(client, organiser)
    page = client.get("/ja/series/study-group/statistics/import")
    assert page.status_code == 200
    assert "出欠" in page.text or "参加者数" in page.text


def test_preview_then_import_of_the_history_file(app, client):
    organiser, _ = _setup(app)
    _log_in(client, organiser)

    preview = _upload(client, HISTORY.read_bytes(), "history.csv")

    assert preview.status_code == 200
    text = preview.text
    assert "Preview: nothing has been saved yet" in text
    assert "23 to create, 0 to change, 0 unchanged, 0 skipped." in text
    assert "Line 23, meeting 92: 314 participants, but the sectors add up to 304." in text
    assert _figures(app) == {}  # the dry run saved nothing
    with _context(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0

    table = text.split('name="table" type="hidden" value="')[1].split('"')[0]
    assert table.startswith("meeting_no,date,mailing_list")
    done = client.post(
        "/en/series/study-group/statistics/import",
        data={"table": HISTORY.read_text(encoding="utf-8")},
    )
    assert done.status_code == 302
    rows = _figures(app)
    assert len(rows) == 23
    assert rows[92].participants == 314 and rows[92].breakdown_total == 304  # kept
    assert rows[93].mailing_list == 2502 and rows[93].registered is None

    again = _upload(client, HISTORY.read_bytes(), "history.csv")
    assert "0 to create, 0 to change, 23 unchanged, 0 skipped." in again.text


def test_shift_jis_csv_with_japanese_headers_in_japanese(app, client):
    organiser, _ = _setup(app)
    _log_in(client, organiser)
    body = "\r\n".join(
        [
            JA_HEADER,
            "1,2002/09/20,47,43,19,23,1,会場,",
            "92,2020年9月25日,2474,314,230,30,44,オンライン,ウェビナー",
            "90,2020-03-06,2224,0,0,0,0,中止,新型コロナウイルスのため中止",
            "5,2003-05-27,58,abc,21,21,3,会場,",
        ]
    ).encode("cp932")

    preview = _upload(client, body, "出席.csv", lang="ja")

    assert preview.status_code == 200
    text = preview.text
    assert "確認画面（まだ何も保存されていません）" in text
    assert "第92回" in text
    # The reason is translated.
    assert "5行目：participantsが" not in text and "5行目：participants：" in text
    client.post("/ja/series/study-group/statistics/import", data={"table": _table(text)})
    rows = _figures(app)
    assert sorted(rows) == [1, 90, 92]
    assert (rows[92].registered, rows[92].online_participants) == (2474, 314)
    assert rows[90].cancelled and rows[1].onsite_participants == 43


def _table(html: str) -> str:
    import html as h

    return h.unescape(html.split('name="table" type="hidden" value="')[1].split('"')[0])


def test_excel_workbook(app, client):
    organiser, _ = _setup(app)
    _log_in(client, organiser)
    book = Workbook()
    sheet = book.active
    sheet.append(["meeting_no", "date", "registered", "participants", "company", "university",
                  "government_other", "format", "note"])  # fmt: skip
    from datetime import datetime

    sheet.append([81, datetime(2018, 7, 27), 300, 209, 145, 37, 27, "onsite", None])
    out = io.BytesIO()
    book.save(out)

    preview = _upload(client, out.getvalue(), "figures.xlsx")

    assert "1 to create, 0 to change, 0 unchanged, 0 skipped." in preview.text
    client.post("/en/series/study-group/statistics/import", data={"table": _table(preview.text)})
    assert _figures(app)[81].participants == 209


def test_the_portal_japanese_export_imports_back(app, client):
    organiser, _ = _setup(app)
    _log_in(client, organiser)
    with _context(app) as session:
        series = session.scalar(sa.select(Series).where(Series.slug == "study-group"))
        import_attendance(session, HISTORY.read_text(encoding="utf-8"), series)
    export = client.get("/ja/series/study-group/statistics.csv").data

    preview = _upload(client, export, "attendance-study-group-ja.csv", lang="ja")

    assert preview.status_code == 200
    assert "0件を新規作成、0件を変更、23件は変更なし、0件は取り込みません。" in preview.text


def test_a_bad_file_shows_the_form_again(app, client):
    organiser, _ = _setup(app)
    _log_in(client, organiser)
    r = _upload(client, b"hello,world\n1,2\n", "x.csv")
    assert r.status_code == 400
    assert "missing column(s): meeting_no, date, participants" in r.text
    r = _upload(client, b"PK\x03\x04garbage", "x.xlsx")
    assert r.status_code == 400
    assert "the file is not an Excel workbook (.xlsx)" in r.text
    r = _upload(client, "\u00e9".encode("utf-16"), "x.csv", lang="ja")
    assert r.status_code == 400


def test_rows_match_by_number_and_date(app, session):
    series = f.series(session, slug="study-group")
    f.enable_for_series(session, series, "attendance")
    upcoming = f.event(session, series, number=1, slug="study-group-1",
                       starts_at=f.at(2027, 1, 15, 5, 30))  # fmt: skip
    session.flush()
    text = HISTORY.read_text(encoding="utf-8")

    report = import_attendance(session, text, series)

    assert [(r.line, r.reason) for r in report.invalid] == [
        (2, "meeting 1 on the portal is on 2027-01-15, not 2002-09-20")
    ]
    assert (
        session.scalar(
            sa.select(MeetingAttendance).where(MeetingAttendance.event_id == upcoming.id)
        )
        is None
    )
    assert report.created == 22


def test_figures_only_for_meetings_that_have_taken_place(app, session):
    series = f.series(session, slug="study-group")
    f.enable_for_series(session, series, "attendance")
    soon = utcnow() + timedelta(days=3)
    f.event(session, series, number=200, slug="study-group-200", starts_at=soon)
    day = (soon.astimezone(__import__("zoneinfo").ZoneInfo(series.timezone))).date()
    header = "meeting_no,date,registered,participants,company,university,government_other,format"
    text = f"{header}\n200,{day.isoformat()},10,8,8,0,0,onsite\n201,2099-01-01,1,1,1,0,0,onsite\n"

    report = import_attendance(session, text, series)

    assert [(r.line, r.reason) for r in report.invalid] == [
        (2, "the meeting has not taken place yet"),
        (3, "the meeting has not taken place yet"),
    ]
    assert session.scalar(sa.select(sa.func.count()).select_from(MeetingAttendance)) == 0
    assert session.scalar(sa.select(Event.id).where(Event.number == 201)) is None


def test_registered_and_mailing_list_are_separate_columns():
    header = "meeting_no,date,registered,mailing_list,participants,company,university,government_other,format"
    rows, invalid = parse(f"{header}\n93,2020-11-06,250,2502,190,137,30,23,online\n")
    assert invalid == []
    assert (rows[0].figures.registered, rows[0].figures.mailing_list) == (250, 2502)
    ja = "開催回,開催日,メーリングリスト登録者数,参加者数,企業関係者,大学関係者,官庁他,開催形式"
    rows, _ = parse(f"{ja}\n93,2020-11-06,2502,190,137,30,23,online\n")
    assert (rows[0].figures.registered, rows[0].figures.mailing_list) == (None, 2502)
