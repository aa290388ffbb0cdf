"""webinar: importing the attendance report (参加記録の取り込み)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugins.webinar import services as wb
from plugins.webinar.models import WebinarAttendance
from portal.audit import AuditEntry
from portal.db import db
from portal.events.models import Event, EventPlugin
from portal.registration import services
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f

S = RegistrationState

ZOOM_REPORT = """\ufeffAttendee Report
Report Generated:,"11/06/2020 18:40:12"
Topic,Webinar ID,Actual Start Time,Actual Duration (minutes)
第93回 レアメタル研究会,812 3456 7890,"11/06/2020 14:20:03",245

Attendee Details
Attended,User Name (Original Name),Email,Join Time,Leave Time,Time in Session (minutes),Country/Region Name
Yes,山田 太郎,Taro.Yamada@Example.ORG,"11/06/2020 14:25:10","11/06/2020 16:02:44",98,Japan
Yes,山田 太郎,taro.yamada@example.org,"11/06/2020 16:10:00","11/06/2020 18:30:00",140,Japan
Yes,Hanako Sato,hanako@example.org,"11/06/2020 14:30:00","11/06/2020 18:00:00",210,Japan
Yes,鈴木 一郎,ichiro@example.org,"11/06/2020 14:31:00","11/06/2020 15:00:00",29,Japan
Yes,佐々木 次郎,jiro@example.org,"11/06/2020 14:31:00","11/06/2020 15:00:00",29,Japan
Yes,未登録 さん,stranger@example.org,"11/06/2020 14:40:00","11/06/2020 15:40:00",60,Japan
Yes,Guest without email,,"11/06/2020 14:40:00","11/06/2020 15:40:00",60,Japan
No,欠席 者,absent@example.org,--,--,,Japan
Yes,田中 三郎,saburo@example.org,"11/06/2020 14:40:00","11/06/2020 15:10:00",30,Japan
"""


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


@pytest.fixture
def world(app):
    """A held hybrid meeting with the webinar on and registrations of every kind."""
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        f.enable(s, event, "webinar", url="https://zoom.example/j/1")
        paid = FeeCategory(event_id=event.id, code="paid", name={"en": "Paid"}, price_minor=5000)
        free = FeeCategory(event_id=event.id, code="free", name={"en": "Free"}, price_minor=0)
        s.add_all([paid, free])
        s.flush()

        def reg(email, mode="online", category=free, **kw):
            person = f.person(s, email=email, **kw)
            return services.register(
                s, event, person, mode=mode, fee_category=category.id, privacy_accepted=True
            )

        ids = {
            "taro": reg("taro.yamada@example.org").id,
            "hanako": reg("Hanako@Example.org").id,  # stored with capitals
            "ichiro": reg("ichiro@example.org", mode="onsite").id,
            "jiro": reg("jiro@example.org", category=paid).id,  # pending payment
            "saburo": reg("saburo@example.org").id,
            "absent": reg("absent@example.org").id,
        }
        services.check_in(s, s.get(Registration, ids["saburo"]), actor=None)
        organiser = f.user(s, roles=(("organiser", series),))
        stranger = f.user(s)
        s.commit()
        return dict(
            slug=event.slug, event_id=event.id, ids=ids, organiser=organiser, stranger=stranger
        )


def states(app, world) -> dict:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Registration.id, Registration.state).where(
                Registration.event_id == world["event_id"]
            )
        ).all()
        by_id = dict(rows)
        return {name: by_id[rid].value for name, rid in world["ids"].items()}


def minutes(app) -> dict:
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                WebinarAttendance.registration_id,
                WebinarAttendance.minutes,
                WebinarAttendance.sessions,
            )
        ).all()
        return {rid: (m, n) for rid, m, n in rows}


def test_parse_a_zoom_report_with_bom_preamble_and_japanese_names():
    report = wb.parse_report(ZOOM_REPORT.encode("utf-8"))
    assert [(r.line, r.name, r.email, r.minutes) for r in report.rows] == [
        (8, "山田 太郎", "taro.yamada@example.org", 98),
        (9, "山田 太郎", "taro.yamada@example.org", 140),
        (10, "Hanako Sato", "hanako@example.org", 210),
        (11, "鈴木 一郎", "ichiro@example.org", 29),
        (12, "佐々木 次郎", "jiro@example.org", 29),
        (13, "未登録 さん", "stranger@example.org", 60),
        (16, "田中 三郎", "saburo@example.org", 30),
    ]
    assert [(r.line, r.name, r.reason) for r in report.skipped] == [
        (14, "Guest without email", "no_email"),
        (15, "欠席 者", "did_not_attend"),
    ]


def test_parse_japanese_headers_in_shift_jis_and_minutes_from_times():
    text = (
        "名前（元の名前）,ユーザーメール,参加時刻,退出時刻,期間（分）\r\n"
        "山田 太郎,TARO@example.org,2020/11/06 14:25:00,2020/11/06 15:00:30,\r\n"
        "佐藤 花子,hanako@example.org,2020/11/06 14:25:00,2020/11/06 15:00:00,35\r\n"
    )
    report = wb.parse_report(text.encode("cp932"))
    assert [(r.name, r.email, r.minutes) for r in report.rows] == [
        ("山田 太郎", "taro@example.org", 36),
        ("佐藤 花子", "hanako@example.org", 35),
    ]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is not a CSV file."),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "This file is not a CSV file."),
        ("名前,参加時刻\n山田,2020-11-06 14:00\n".encode(), "The file has no email column."),
        (b"   \n", "The file is empty."),
        (b"a" * (5 * 1024 * 1024 + 1), "The file is too large: at most 5 MB."),
        (b"\xff\xfe\xfa\xfb\x80\x81\x82", "This file is not a CSV file."),
    ],
)
def test_bad_files_are_refused_with_a_message(app, data, message):
    with app.test_request_context(), pytest.raises(wb.ReportError) as refused:
        wb.parse_report(data)
    from flask_babel import force_locale

    with force_locale("en"):
        assert str(refused.value.message).startswith(message)


def test_import_checks_in_online_registrations_and_records_minutes(app, world):
    with app.app_context():
        s = db.session
        event = s.get(Event, world["event_id"])
        organiser = s.get(type(world["organiser"]), world["organiser"].id)
        result = wb.import_report(s, event, wb.parse_report(ZOOM_REPORT.encode()), actor=organiser)
        s.commit()
        ids = world["ids"]
        assert sorted(r.id for r in result.checked_in) == sorted([ids["taro"], ids["hanako"]])
        assert [r.id for r in result.already] == [ids["saburo"]]
        assert (result.recorded, result.unchanged) == (3, 0)
        assert [(u.lines, u.name, u.email, u.reason, u.state) for u in result.unmatched] == [
            ((14,), "Guest without email", "", "no_email", None),
            ((15,), "欠席 者", "", "did_not_attend", None),
            ((11,), "鈴木 一郎", "ichiro@example.org", "onsite", None),
            ((12,), "佐々木 次郎", "jiro@example.org", "not_confirmed", S.pending_payment),
            ((13,), "未登録 さん", "stranger@example.org", "no_registration", None),
        ]
        # The core's check-in: state attended and a history entry by the organiser.
        taro = s.get(Registration, ids["taro"])
        history = services.history(s, taro)
        assert [(e.action, e.data["new"], u.id if u else None) for e, u in history][-1] == (
            "checked_in",
            "attended",
            world["organiser"].id,
        )
    assert states(app, world) == {
        "taro": "attended",
        "hanako": "attended",
        "ichiro": "confirmed",
        "jiro": "pending_payment",
        "saburo": "attended",
        "absent": "confirmed",
    }
    ids = world["ids"]
    assert minutes(app) == {
        ids["taro"]: (238, 2),
        ids["hanako"]: (210, 1),
        ids["saburo"]: (30, 1),
    }


def test_importing_the_same_file_twice_changes_nothing(app, world):
    def run():
        with app.app_context():
            s = db.session
            event = s.get(Event, world["event_id"])
            result = wb.import_report(s, event, wb.parse_report(ZOOM_REPORT.encode()), actor=None)
            s.commit()
            return result

    run()
    with app.app_context():
        audit_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    before = (states(app, world), minutes(app))

    second = run()

    assert (second.checked_in, second.recorded, second.unchanged) == ([], 0, 3)
    assert sorted(r.id for r in second.already) == sorted(
        world["ids"][k] for k in ("taro", "hanako", "saburo")
    )
    assert (states(app, world), minutes(app)) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audit_before


def _upload(client, slug, data: bytes, filename="report.csv", lang="en"):
    return client.post(
        f"/{lang}/organiser/events/{slug}/webinar/",
        data={"report": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_import_page_shows_the_result_and_unmatched_rows(app, client, world):
    login(client, world["organiser"])
    page = client.get(f"/en/organiser/events/{world['slug']}/webinar/")
    assert page.status_code == 200
    assert "Import the attendance report" in page.text
    assert 'enctype="multipart/form-data"' in page.text

    r = _upload(client, world["slug"], ZOOM_REPORT.encode())
    assert r.status_code == 200
    assert '<dd data-count="checked-in">2</dd>' in r.text
    assert '<dd data-count="already">1</dd>' in r.text
    assert '<dd data-count="unmatched">5</dd>' in r.text
    assert r.text.count('<tr data-unmatched="') == 5
    assert "No registration with this email address" in r.text
    assert "stranger@example.org" in r.text
    assert "Registered to attend on site" in r.text
    assert "The registration is not confirmed (Awaiting payment)" in r.text
    assert r.text.count("data-attendance=") == 3
    assert "<td data-minutes>238</td>" in r.text

    again = _upload(client, world["slug"], ZOOM_REPORT.encode())
    assert '<dd data-count="checked-in">0</dd>' in again.text
    assert '<dd data-count="unchanged">3</dd>' in again.text

    ja = _upload(client, world["slug"], ZOOM_REPORT.encode(), lang="ja")
    assert ja.status_code == 200 and '<html lang="ja">' in ja.text


def test_import_page_refuses_bad_files_with_a_message(app, client, world):
    login(client, world["organiser"])
    for data, message in (
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is not a CSV file."),
        (b"Name,Join Time\nTaro,2020-11-06 14:00\n", "The file has no email column."),
        (b"x" * (5 * 1024 * 1024 + 10), "The file is too large: at most 5 MB."),
    ):
        r = _upload(client, world["slug"], data)
        assert r.status_code == 400
        assert message in r.text
        assert 'class="field has-error"' in r.text
    missing = client.post(f"/en/organiser/events/{world['slug']}/webinar/", data={})
    assert missing.status_code == 400
    assert "Please choose the attendance report (a CSV file)." in missing.text
    assert states(app, world)["taro"] == "confirmed"


def test_import_page_only_for_organisers_of_the_series_and_when_on(app, client, world):
    url = f"/en/organiser/events/{world['slug']}/webinar/"
    assert client.get(url).status_code == 302  # log in first
    login(client, world["stranger"])
    assert client.get(url).status_code == 404
    assert _upload(client, world["slug"], ZOOM_REPORT.encode()).status_code == 404
    assert states(app, world)["taro"] == "confirmed"
    with app.app_context():
        row = db.session.scalar(sa.select(EventPlugin).where(EventPlugin.plugin == "webinar"))
        row.enabled = False
        db.session.commit()
    login(client, world["organiser"])
    assert client.get(url).status_code == 404


def test_attendance_list_keeps_a_constant_number_of_queries(app, client, world):
    from tests.test_exchange_meeting_views import count_queries

    login(client, world["organiser"])
    url = f"/en/organiser/events/{world['slug']}/webinar/"
    _upload(client, world["slug"], ZOOM_REPORT.encode())
    small = count_queries(app, lambda: client.get(url))
    lines = ["Name,Email,Join Time,Leave Time,Duration (Minutes)"]
    with app.app_context():
        s = db.session
        event = s.get(Event, world["event_id"])
        free = s.scalar(sa.select(FeeCategory).where(FeeCategory.code == "free"))
        for i in range(30):
            p = f.person(s, email=f"many{i}@example.org")
            services.register(
                s, event, p, mode="online", fee_category=free.id, privacy_accepted=True
            )
            lines.append(f"P{i},many{i}@example.org,2020-11-06 14:00:00,2020-11-06 15:00:00,60")
        s.commit()
    _upload(client, world["slug"], "\n".join(lines).encode())
    large = count_queries(app, lambda: client.get(url))
    assert small == large


ZOOM_REPORT_JA = (
    "出席者レポート\r\n"
    "出席者の詳細\r\n"
    "出席済み,ユーザー名（元の名前）,ユーザーのメールアドレス,参加時刻,退出時刻,期間（分）,国/地域名\r\n"
    "はい,山田 太郎,taro.yamada@example.org,{day} 14:25:10,{day} 16:02:44,98,日本\r\n"
    "はい,山田 太郎,taro.yamada@example.org,{day} 16:10:00,{day} 17:30:00,80,日本\r\n"
    "はい,佐藤 花子,Hanako@example.org,{day} 14:30:00,{day} 17:00:00,150,日本\r\n"
)


@pytest.mark.parametrize("email_header", ["ユーザーのメールアドレス", "ユーザーのメール"])
def test_zoom_japanese_headers_are_recognised(email_header):
    text = ZOOM_REPORT_JA.format(day="2020/11/06").replace("ユーザーのメールアドレス", email_header)
    report = wb.parse_report(text.encode("cp932"))
    assert [(r.line, r.name, r.email, r.minutes) for r in report.rows] == [
        (4, "山田 太郎", "taro.yamada@example.org", 98),
        (5, "山田 太郎", "taro.yamada@example.org", 80),
        (6, "佐藤 花子", "hanako@example.org", 150),
    ]
    assert report.rows[0].joined.isoformat() == "2020-11-06T14:25:10"
    assert report.rows[1].left.isoformat() == "2020-11-06T17:30:00"


def test_import_records_join_and_leave_times_and_checks_in_at_the_join_time(app, world):
    from datetime import UTC
    from zoneinfo import ZoneInfo

    with app.app_context():
        s = db.session
        event = s.get(Event, world["event_id"])
        tz = ZoneInfo(event.timezone)
        day = event.starts_at.astimezone(tz).strftime("%Y/%m/%d")
        report = wb.parse_report(ZOOM_REPORT_JA.format(day=day).encode("utf-8"))
        later = event.ends_at + timedelta(days=1)
        wb.import_report(s, event, report, actor=None, now=later)
        s.commit()
        rows = {r.registration_id: r for r in s.scalars(sa.select(WebinarAttendance)).all()}
        taro = rows[world["ids"]["taro"]]
        local = event.starts_at.astimezone(tz).date()
        joined = taro.first_joined_at.astimezone(tz)
        assert (joined.date(), joined.strftime("%H:%M:%S")) == (local, "14:25:10")
        assert taro.last_left_at.astimezone(tz).strftime("%H:%M") == "17:30"
        assert (taro.minutes, taro.sessions) == (178, 2)
        registration = s.get(Registration, world["ids"]["taro"])
        assert registration.checked_in_at.astimezone(UTC) == taro.first_joined_at.astimezone(UTC)
