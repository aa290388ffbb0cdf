"""The list of a series (double opt-in, leaving, language, bounces, import, 登録人数 from its
history) and the organiser's announcement pages."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import Person
from portal.announcements import counts, subscriptions, tokens
from portal.announcements.models import (
    Announcement,
    AnnouncementDelivery,
    AnnouncementStatus,
    Audience,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from portal.db import db, utcnow
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from tests import factories as f

S = SubscriptionStatus


@pytest.fixture
def study(app, session):
    series = f.series(session, slug="study")
    session.commit()
    return series


def _link(body: str, part: str) -> str:
    return re.search(r"http://localhost(/\S*" + part + r"/\S+)", body).group(1)


def _status(session, series, email):
    db.session.expire_all()
    person = session.scalar(sa.select(Person).where(Person.email == email))
    sub = subscriptions.subscription_of(session, series.id, person.id)
    return sub.status if sub else None


def test_joining_from_the_series_page_needs_the_emailed_confirmation(app, client, session, study):
    page = client.get("/en/series/study/announcements/join")
    assert page.status_code == 200
    assert "Join the list" in page.get_data(as_text=True)
    response = client.post(
        "/en/series/study/announcements/join",
        data={"email": "Hana@Example.org", "name": "Hana Sato", "language": "en"},
    )
    assert response.status_code == 200
    assert "We sent an email to Hana@Example.org" in response.get_data(as_text=True)
    assert _status(session, study, "hana@example.org") == S.pending
    assert counts.current_size(session, study) == 0
    mail = session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.to_address == "hana@example.org")
    )
    assert mail.language == "en" and "confirm" in mail.subject.lower()
    confirm = _link(mail.body_text, "confirm")
    assert client.get(confirm).status_code == 200
    assert _status(session, study, "hana@example.org") == S.pending  # GET changes nothing
    assert client.post(confirm).status_code == 200
    assert _status(session, study, "hana@example.org") == S.confirmed
    assert client.post(confirm).status_code == 200  # twice: unchanged
    history = session.execute(
        sa.select(SubscriptionEvent.kind, SubscriptionEvent.delta).order_by(SubscriptionEvent.id)
    ).all()
    assert history == [("requested", 0), ("joined", 1)]
    assert counts.current_size(session, study) == 1


def test_join_form_keeps_input_and_explains_bad_addresses(client, study):
    response = client.post(
        "/ja/series/study/announcements/join",
        data={"email": "not-an-address", "name": "佐藤", "language": "ja"},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "正しいメールアドレスを入力してください。" in text and 'value="佐藤"' in text


def test_bad_links_are_a_clear_400(client, study):
    for url in (
        "/ja/announcements/confirm/nonsense",
        "/ja/announcements/leave/nonsense",
        "/ja/announcements/view/nonsense",
    ):
        response = client.get(url)
        assert response.status_code == 400
        assert "リンク" in response.get_data(as_text=True)
    assert client.post("/ja/announcements/leave/nonsense").status_code == 400


def test_leave_page_language_and_one_click_without_csrf(app, client, session, study):
    person = f.person(session, email="ken@example.org")
    sub = subscriptions.request_join(session, study, person=person, language="ja", confirmed=True)
    session.commit()
    with app.test_request_context():
        token = tokens.leave_token(study.id, person.id, 0)
    page = client.get(f"/ja/announcements/leave/{token}")
    assert page.status_code == 200 and "配信を停止する" in page.get_data(as_text=True)
    response = client.post(f"/en/announcements/language/{token}", data={"language": "en"})
    assert response.status_code == 302
    db.session.expire_all()
    assert session.get(Subscription, sub.id).language == "en"
    bad = client.post(f"/en/announcements/language/{token}", data={"language": "xx"})
    assert bad.status_code == 400
    app.config["WTF_CSRF_ENABLED"] = True
    for _ in range(2):
        response = client.post(
            f"/ja/announcements/leave/{token}", data={"List-Unsubscribe": "One-Click"}
        )
        assert response.status_code == 200
    assert _status(session, study, "ken@example.org") == S.left
    assert counts.current_size(session, study) == 0
    kinds = session.scalars(
        sa.select(SubscriptionEvent.kind).where(SubscriptionEvent.subscription_id == sub.id)
    ).all()
    assert kinds == ["joined", "left"]


def test_bounce_webhook_and_cli_mark_undeliverable(app, client, runner, session, study):
    for email in ("a@example.org", "b@example.org"):
        person = f.person(session, email=email)
        subscriptions.request_join(session, study, person=person, confirmed=True)
    session.commit()
    assert client.post("/announcements/bounces", json={"email": "a@example.org"}).status_code == 403
    app.config["BOUNCE_WEBHOOK_SECRET"] = "s3cret"
    wrong = client.post(
        "/announcements/bounces", json={"email": "a@example.org"}, headers={"X-Portal-Secret": "x"}
    )
    assert wrong.status_code == 403
    ok = client.post(
        "/announcements/bounces",
        json=[{"email": "A@example.org", "type": "complaint"}],
        headers={"X-Portal-Secret": "s3cret"},
    )
    assert ok.status_code == 200 and ok.get_json() == {"changed": 1}
    bad = client.post(
        "/announcements/bounces", json={"x": 1}, headers={"X-Portal-Secret": "s3cret"}
    )
    assert bad.status_code == 400
    result = runner.invoke(args=["announcements", "bounce", "b@example.org"])
    assert result.exit_code == 0 and "1 subscription" in result.output
    assert _status(session, study, "a@example.org") == S.undeliverable
    assert _status(session, study, "b@example.org") == S.undeliverable
    assert counts.current_size(session, study) == 0


def _history(session, series, email, *moves):
    person = f.person(session, email=email)
    sub = Subscription(series_id=series.id, person_id=person.id, status=None, language="ja")
    for when, status in moves:
        subscriptions.move(session, sub, status, status.value, at=when)
    return sub


def test_list_size_on_a_day_follows_the_history_and_imported_figures_stand_before(
    app, session, study
):
    jan = datetime(2021, 1, 10, 1, tzinfo=UTC)
    _history(session, study, "a@example.org", (jan, S.confirmed))
    _history(session, study, "b@example.org", (jan, S.imported))
    _history(
        session,
        study,
        "c@example.org",
        (jan, S.confirmed),
        (datetime(2021, 2, 1, tzinfo=UTC), S.left),
    )
    _history(session, study, "d@example.org", (jan, S.pending))
    session.commit()
    sizes = counts.list_sizes(
        session, study, [date(2020, 11, 6), date(2021, 1, 10), date(2021, 1, 20), date(2021, 3, 1)]
    )
    assert sizes == {
        date(2020, 11, 6): None,  # before the list was kept: the imported figure stands
        date(2021, 1, 10): 3,
        date(2021, 1, 20): 3,
        date(2021, 3, 1): 2,
    }


def test_statistics_use_the_list_history_after_the_imported_history(app, session, client):
    from plugins.attendance import services as attendance
    from portal.demo import ATTENDANCE_CSV, load_demo
    from portal.events.models import EventStatus, Series

    load_demo(session)
    session.commit()
    study = session.scalar(sa.select(Series).where(Series.slug == "study-group"))
    with ATTENDANCE_CSV.open(encoding="utf-8") as handle:
        expected = {int(r["meeting_no"]): int(r["mailing_list"]) for r in csv.DictReader(handle)}
    rows = attendance.history_rows(session, study)
    shown = {row.number: row.figures.mailing_list for row in rows if row.number in expected}
    assert shown == expected  # Table 1, meeting by meeting

    # The list is kept from now on: a new meeting's figure is the list on its day.
    now = utcnow()
    for i in range(3):
        _history(session, study, f"n{i}@example.org", (now - timedelta(days=3), S.confirmed))
    _history(
        session,
        study,
        "gone@example.org",
        (now - timedelta(days=3), S.confirmed),
        (now - timedelta(days=1), S.left),
    )
    meeting = f.event(
        session,
        study,
        slug="held-after-the-list",
        number=150,
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=2) + timedelta(hours=3),
        status=EventStatus.closed,
    )
    f.enable(session, meeting, "attendance")
    attendance.save_figures(
        session, meeting, attendance.Figures(participants=2, company=2), now=now
    )
    session.commit()
    figures = {row.number: row.figures for row in attendance.history_rows(session, study)}
    assert figures[150].mailing_list == 4  # four on the list that day; one left since
    assert figures[93].mailing_list == 2502
    assert attendance.event_figures(session, meeting).mailing_list == 4
    page = client.get("/ja/series/study-group/statistics")
    assert page.status_code == 200


def test_hook_member_people_gives_the_members_audience(app, session, study):
    from plugins.membership import services as membership

    company = membership.create_company(
        session,
        study,
        None,
        domains=["kakuu.example"],
        name=BilingualText(ja="架空金属", en="Kakuu Metals"),
        contact_name="佐藤",
        contact_email="sato@kakuu.example",
        billing_address="東京都",
        language="ja",
    )
    membership.record_membership(
        session,
        company,
        membership.current_fiscal_year(study),
        tier=BilingualText(ja="一般", en="Regular"),
        amount_minor=100000,
        actor=None,
    )
    member = f.user(session, email="jiro@kakuu.example")
    outsider = f.user(session, email="x@example.org")
    session.flush()
    for user in (member, outsider):
        subscriptions.request_join(session, study, person=user.person, confirmed=True)
    session.commit()
    from portal.announcements import audience

    a = Announcement(series_id=study.id, audience=Audience.members)
    session.add(a)
    session.flush()
    people = {row[0] for row in session.execute(audience.recipients(session, a))}
    assert people == {member.person_id}


@pytest.fixture
def organiser(app, session, study):
    user = f.user(session, email="org@example.org", roles=(("organiser", study),))
    session.commit()
    return user


def _login(client, user):
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
        flask_session["_fresh"] = True


def test_organiser_writes_previews_tests_and_queues_an_announcement(
    app, client, session, study, organiser, smtp_server
):
    app.config["MAIL_PORT"] = smtp_server.port
    event = f.event(session, study, slug="meeting-94")
    person = f.person(session, email="reader@example.org")
    subscriptions.request_join(session, study, person=person, language="en", confirmed=True)
    session.commit()
    _login(client, organiser)
    assert client.get("/ja/organiser/series/study/announcements/").status_code == 200
    empty = client.post(
        "/ja/organiser/series/study/announcements/new",
        data={"subject_ja": "", "subject_en": "", "body_ja": "", "body_en": "", "audience": "list"},
    )
    assert empty.status_code == 400 and "件名" in empty.get_data(as_text=True)
    response = client.post(
        "/ja/organiser/series/study/announcements/new",
        data={
            "subject_ja": "{event_title}のご案内",
            "subject_en": "{event_title}",
            "body_ja": "**{event_title}**\n\n<script>alert(1)</script>申込：{registration_link}",
            "body_en": "Register at {registration_link}",
            "event_id": str(event.id),
            "audience": "list",
        },
    )
    assert response.status_code == 302
    a = session.scalar(sa.select(Announcement))
    detail = client.get(response.headers["Location"])
    text = detail.get_data(as_text=True)
    assert detail.status_code == 200
    assert "<strong>" + event.title.ja + "</strong>" in text
    assert "<script>alert" not in text
    assert "/en/events/meeting-94/register" in text and "/ja/events/meeting-94/register" in text
    test = client.post(
        f"/ja/organiser/series/study/announcements/{a.id}/test", data={"language": "en"}
    )
    assert test.status_code == 302
    mail = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == "org@example.org"))
    assert mail.subject == f"[Test] {event.title.en}"
    bad_time = client.post(
        f"/ja/organiser/series/study/announcements/{a.id}/send", data={"send_at": "yesterday"}
    )
    assert bad_time.status_code == 400
    send = client.post(f"/ja/organiser/series/study/announcements/{a.id}/send", data={})
    assert send.status_code == 302
    db.session.expire_all()
    a = session.get(Announcement, a.id)
    assert a.status == AnnouncementStatus.scheduled
    # Nothing was created in the request: the job does it.
    assert session.scalar(sa.select(sa.func.count()).select_from(AnnouncementDelivery)) == 0
    from portal.tasks.jobs import run_job

    outcome = run_job(session, "send-announcements")
    assert outcome.startswith("prepared 1, sent 1, refused 0")
    assert [m["To"] for m in smtp_server.messages] == ["reader@example.org"]
    assert smtp_server.messages[0]["Subject"] == event.title.en
    db.session.expire_all()
    assert session.get(Announcement, a.id).recipients == 1
    page = client.get(f"/ja/organiser/series/study/announcements/{a.id}/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="sent">1<' in text and 'id="remaining">0<' in text and 'id="failed">0<' in text
    assert "送信結果" in text  # the report of a finished announcement
    with app.test_request_context():
        view_token = tokens.view_token(a.id, person.id)
    public = client.get(f"/en/announcements/view/{view_token}")
    assert public.status_code == 200 and "Register at" in public.get_data(as_text=True)


def test_other_series_organiser_cannot_open_the_pages(app, client, session, study):
    other = f.series(session, "workshop", slug="boston")
    user = f.user(session, email="boston@example.org", roles=(("organiser", other),))
    session.commit()
    _login(client, user)
    assert client.get("/ja/organiser/series/study/announcements/").status_code == 404
    assert client.get("/ja/organiser/series/boston/announcements/").status_code == 200


def test_import_previews_merges_and_keeps_or_asks(app, client, session, study, organiser):
    known = f.person(session, email="known@example.org", affiliation="")
    session.commit()
    _login(client, organiser)
    rows = [
        ["氏名", "フリガナ", "メールアドレス", "所属", "区分", "言語"],
        ["山田 太郎", "ヤマダ タロウ", "taro@example.org", "架空金属", "企業", "日本語"],
        ["Known Person", "", "KNOWN@example.org", "Univ", "university", "en"],
        ["重複", "", "taro@example.org", "", "", ""],
        ["壊れた", "", "broken", "", "", ""],
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    data = out.getvalue().encode("cp932")
    preview = client.post(
        "/ja/organiser/series/study/announcements/list/import",
        data={"file": (io.BytesIO(data), "list.csv"), "confirm_by_email": "keep"},
        content_type="multipart/form-data",
    )
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    assert "新規：1" in text or "新規: 1" in text or "1" in text
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0
    stash = re.search(r'name="stash" value="([^"]+)"', text).group(1)
    done = client.post(
        "/ja/organiser/series/study/announcements/list/import",
        data={"stash": stash, "step": "import", "confirm_by_email": "keep"},
    )
    assert done.status_code == 302
    assert _status(session, study, "taro@example.org") == S.imported
    assert _status(session, study, "known@example.org") == S.imported
    db.session.expire_all()
    assert session.get(Person, known.id).affiliation == "Univ"
    taro = session.scalar(sa.select(Person).where(Person.email == "taro@example.org"))
    assert (taro.family_name, taro.given_name, taro.affiliation) == ("山田", "太郎", "架空金属")
    assert counts.current_size(session, study) == 2
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
    broken = client.post(
        "/ja/organiser/series/study/announcements/list/import",
        data={"file": (io.BytesIO(b"\x00\x01nonsense"), "x.csv"), "confirm_by_email": "ask"},
        content_type="multipart/form-data",
    )
    assert broken.status_code == 400
    page = client.get("/ja/organiser/series/study/announcements/list")
    assert page.status_code == 200 and "taro@example.org" in page.get_data(as_text=True)


def test_signup_has_unticked_boxes_and_a_ticked_one_asks_to_confirm(app, client, session, study):
    page = client.get("/ja/account/signup")
    text = page.get_data(as_text=True)
    box = re.search(r'<input[^>]*name="announcement_lists"[^>]*>', text).group(0)
    assert "checked" not in box
    data = dict(
        email="new@example.org",
        password="a long password",
        password_confirm="a long password",
        family_name="新井",
        given_name="一郎",
        family_name_kana="あらい",
        given_name_kana="いちろう",
        romanized_name="Ichiro Arai",
        affiliation="架空大学",
        sector="university",
        country="JP",
        preferred_language="ja",
    )
    client.post("/ja/account/signup", data=dict(data, email="none@example.org"))
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0
    client.post("/ja/account/signup", data=dict(data, announcement_lists=str(study.id)))
    assert _status(session, study, "new@example.org") == S.pending
    templates = set(session.scalars(sa.select(OutboxEmail.template)))
    assert "announcements/confirm" in templates


def test_registration_box_is_separate_and_unticked(app, client, session, study):
    from portal.registration.models import FeeCategory

    event = f.event(session, study, slug="open-meeting")
    session.add(
        FeeCategory(event_id=event.id, code="free", name=BilingualText(ja="無料", en="Free"))
    )
    user = f.user(session, email="reg@example.org")
    other = f.user(session, email="noreg@example.org")
    session.commit()
    fee_id = session.scalar(sa.select(FeeCategory.id))
    _login(client, user)
    page = client.get("/ja/events/open-meeting/register").get_data(as_text=True)
    box = re.search(r'<input[^>]*name="join_list"[^>]*>', page).group(0)
    assert "checked" not in box
    data = {"attendance_mode": "onsite", "fee_category": fee_id, "privacy": "y", "step": "confirm"}
    assert (
        client.post("/ja/events/open-meeting/register", data=dict(data, join_list="y")).status_code
        == 302
    )
    assert _status(session, study, "reg@example.org") == S.confirmed  # verified, asked by them
    second = app.test_client()
    _login(second, other)
    assert second.post("/ja/events/open-meeting/register", data=data).status_code == 302
    assert _status(session, study, "noreg@example.org") is None


def test_join_page_does_not_tell_strangers_who_is_on_the_list(app, client, session, study):
    person = f.person(session, email="on@example.org")
    subscriptions.request_join(session, study, person=person, language="ja", confirmed=True)
    session.commit()
    response = client.post(
        "/en/series/study/announcements/join",
        data={"email": "on@example.org", "name": "", "language": "en"},
    )
    assert response.status_code == 200
    assert "We sent an email to on@example.org" in response.get_data(as_text=True)
    db.session.expire_all()
    sub = subscriptions.subscription_of(session, study.id, person.id)
    assert (sub.status, sub.language) == (S.confirmed, "ja")


def test_organiser_pages_refuse_bad_input_without_500(app, client, session, study, organiser):
    a = Announcement(
        series_id=study.id,
        subject=BilingualText(ja="件名", en="Subject"),
        body=BilingualText(ja="本文", en="Text"),
    )
    session.add(a)
    session.commit()
    _login(client, organiser)
    base = "/ja/organiser/series/study/announcements"
    assert client.get(f"{base}/999999/").status_code == 404
    bad = client.post(
        f"{base}/{a.id}/",
        data={"subject_ja": "新しい件名", "body_ja": "本文", "audience": "everyone"},
    )
    assert bad.status_code == 400 and 'value="新しい件名"' in bad.get_data(as_text=True)
    assert client.post(f"{base}/{a.id}/test", data={"language": "xx"}).status_code == 400
    assert client.post(f"{base}/list/import", data={"confirm_by_email": "ask"}).status_code == 400
    assert client.get(f"{base}/list?status=nonsense").status_code == 200
    assert client.get(f"{base}/list?page=abc").status_code == 400  # the project's int_arg
    assert client.post(f"{base}/{a.id}/unschedule", data={}).status_code == 302


def test_data_download_and_account_deletion_reach_the_lists(app, client, session, study):
    from tests.test_accounts import log_in

    user = f.user(session, email="leaver@example.org")
    subscriptions.request_join(session, study, person=user.person, language="en", confirmed=True)
    session.commit()
    log_in(client, "leaver@example.org")
    data = client.get("/en/account/profile/data.json").json
    assert [(x["series"], x["status"], x["language"]) for x in data["announcements"]["lists"]] == [
        ("study", "confirmed", "en")
    ]
    response = client.post(
        "/en/account/profile/delete", data={"delete-password": f.PASSWORD, "delete-confirm": "y"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    sub = subscriptions.subscription_of(session, study.id, user.person_id)
    assert sub.status == S.left
    assert counts.current_size(session, study) == 0
    from portal.localtime import today

    assert counts.list_size_on(session, study, today(study.timezone)) == 0


def test_organiser_pages_issue_the_same_queries_for_5_or_60_rows(
    app, client, session, study, organiser
):
    from tests.test_attendance import count_queries

    def add(n, start):
        for i in range(start, start + n):
            person = f.person(session, email=f"r{i}@example.org")
            subscriptions.request_join(session, study, person=person, confirmed=True)
            session.add(
                Announcement(
                    series_id=study.id,
                    subject=BilingualText(ja=f"件名{i}", en=f"Subject {i}"),
                    body=BilingualText(ja="本文", en="Text"),
                    status=AnnouncementStatus.sent,
                    recipients=1,
                )
            )
        session.commit()

    _login(client, organiser)
    pages = (
        "/ja/organiser/series/study/announcements/",
        "/ja/organiser/series/study/announcements/list",
    )

    def measure():
        found = []
        for url in pages:
            db.session.close()  # the requests share the test's app context: no cached rows
            with count_queries(app) as statements:
                assert client.get(url).status_code == 200
            found.append(len(statements))
        return found

    add(5, 0)
    measure()  # the first request of the client loads what every later one finds cached
    few = measure()
    add(55, 5)
    many = measure()
    assert many == few
