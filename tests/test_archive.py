"""The lecture archive: uploads checked by content and size, slide text search, who may open
what (with exact status codes), the access log, browsing, and the archive's hooks."""

from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from plugins.archive import files
from plugins.archive import services as archive
from plugins.archive.models import ArchiveAccessLog, ArchiveItem, FileType, ItemKind
from plugins.membership import services as membership
from portal.accounts.models import User
from portal.audit import AuditEntry
from portal.db import db, utcnow
from portal.events.models import Event, SeriesPlugin, Talk
from portal.i18n import BilingualText
from tests import factories as f


@contextmanager
def database(app):
    """A database session in its own app context (not shared with the test client)."""
    with app.app_context():
        yield db.session


def login(client, app, user_id: int | None) -> None:
    if user_id is None:
        with client.session_transaction() as flask_session:
            flask_session.clear()
        return
    with database(app) as s:
        stamp = s.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


def make_pdf(*lines: str) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    y = 800
    for line in lines:
        canvas.drawString(72, y, line)
        y -= 20
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def make_pptx(*slides: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("ppt/presentation.xml", "<p:presentation/>")
        for n, text in enumerate(slides, start=1):
            z.writestr(
                f"ppt/slides/slide{n}.xml",
                f"<p:sld><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>",
            )
    return buffer.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def world(app):
    """A study group with a past meeting (archive on) and two talks; a member company."""
    with database(app) as s:
        study = f.series(s, slug="study")
        other = f.series(s, slug="other")
        admin = f.user(s, email="admin@example.org", is_admin=True)
        organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
        other_org = f.user(s, email="org2@example.org", roles=(("organiser", other),))
        outsider = f.user(s, email="someone@example.org")
        member = f.user(s, email="ichiro@kakuu-metal.co.jp")
        speaker = f.user(
            s,
            email="speaker@univ.example",
            family_name="鈴木",
            given_name="一郎",
            family_name_kana="すずき",
            given_name_kana="いちろう",
            romanized_name="Ichiro Suzuki",
        )
        speaker2 = f.user(s, email="speaker2@univ.example", romanized_name="Hanako Tanaka")
        start = utcnow().replace(microsecond=0) - timedelta(days=60)
        meeting = f.event(s, study, slug="meeting-93", number=93, starts_at=start)
        f.enable(s, meeting, "archive")
        f.enable(s, meeting, "membership")  # members are known to the archive
        talk = f.talk(
            s,
            meeting,
            speaker.person,
            title=BilingualText(ja="タンタルの精錬", en="Refining tantalum"),
            position=1,
        )
        talk2 = f.talk(
            s,
            meeting,
            speaker2.person,
            title=BilingualText(ja="ニオブの市場", en="The niobium market"),
            position=2,
        )
        company = membership.create_company(
            s,
            study,
            None,
            domains=["kakuu-metal.co.jp"],
            name=BilingualText(ja="架空金属株式会社", en="Kakuu Metals"),
            contact_name="佐藤 花子",
            contact_email="hanako@kakuu-metal.co.jp",
            billing_address="東京都",
            language="ja",
        )
        membership.record_membership(
            s,
            company,
            membership.current_fiscal_year(study),
            tier=BilingualText(ja="一般", en="Regular"),
            amount_minor=100000,
            actor=None,
        )
        s.commit()
        ids = {
            name: obj.id
            for name, obj in dict(
                study=study,
                other=other,
                admin=admin,
                organiser=organiser,
                other_org=other_org,
                outsider=outsider,
                member=member,
                speaker=speaker,
                speaker2=speaker2,
                meeting=meeting,
                talk=talk,
                talk2=talk2,
            ).items()
        }
    ids["anonymous"] = None
    return ids


def add_file(app, talk_id, data=None, name="slides.pdf", user_key=None, world=None) -> int:
    with database(app) as s:
        talk = s.get(Talk, talk_id)
        actor = s.get(User, world[user_key]) if user_key else None
        item = archive.add_file(
            s, talk, data or make_pdf("Hafnium separation by solvent extraction"), name, actor
        )
        s.commit()
        return item.id


# -- uploads ---------------------------------------------------------------------------------


def test_speaker_uploads_slides_and_the_text_is_searchable(app, client, world):
    login(client, app, world["speaker"])
    url = f"/ja/events/meeting-93/archive/talks/{world['talk']}/files"
    assert client.get(url).status_code == 200
    pdf = make_pdf("Electron beam melting", "Hafnium separation by solvent extraction")
    response = client.post(
        url,
        data={
            "file": (io.BytesIO(pdf), "suzuki-2026.pdf"),
            "title_ja": "講演スライド",
            "title_en": "Slides",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with database(app) as s:
        item = s.scalar(sa.select(ArchiveItem))
        assert (item.kind, item.file_type, item.original_name, item.size) == (
            ItemKind.file,
            FileType.pdf,
            "suzuki-2026.pdf",
            len(pdf),
        )
        assert item.title == BilingualText(ja="講演スライド", en="Slides")
        assert "hafniumseparationbysolventextraction" in item.text_key
        assert item.uploaded_by_id == world["speaker"]
        stored = Path(app.config["UPLOAD_FOLDER"]) / "archive" / item.stored_name
        assert stored.read_bytes() == pdf
        assert item.stored_name.endswith(".pdf") and "suzuki" not in item.stored_name
        assert s.scalar(sa.select(AuditEntry.action).where(AuditEntry.subject_type == "talk")) == (
            "archive.file_added"
        )

    # "Hafnium" is neither in a title nor a speaker's name: only in the PDF's text.
    found = client.get("/ja/series/study/archive/?q=hafnium").get_data(as_text=True)
    assert "タンタルの精錬" in found
    assert "ニオブの市場" not in found
    # Two words, one from the slides and one from the speaker's name, both must match.
    assert "Refining tantalum" in client.get("/en/series/study/archive/?q=SOLVENT+suzuki").get_data(
        as_text=True
    )
    nothing = client.get("/en/series/study/archive/?q=hafnium+tanaka").get_data(as_text=True)
    assert "Nothing in the archive matches your search." in nothing


def test_search_titles_and_speakers_and_pptx_text(app, client, world):
    add_file(app, world["talk"], world=world)
    add_file(
        app, world["talk2"], make_pptx("Niobium supply chain", "二次電池"), "m.pptx", world=world
    )
    login(client, app, world["member"])  # the slides' text is searched for those who may open it
    pages = {
        q: client.get(f"/ja/series/study/archive/?q={q}").get_data(as_text=True)
        for q in ("タンタル", "refining", "鈴木", "すずき", "tanaka", "supply", "二次電池")
    }
    assert "タンタルの精錬" in pages["タンタル"] and "ニオブの市場" not in pages["タンタル"]
    assert "タンタルの精錬" in pages["refining"]
    assert "タンタルの精錬" in pages["鈴木"] and "タンタルの精錬" in pages["すずき"]
    assert "ニオブの市場" in pages["tanaka"] and "タンタルの精錬" not in pages["tanaka"]
    assert "ニオブの市場" in pages["supply"]
    assert "ニオブの市場" in pages["二次電池"]


def test_a_text_file_renamed_pdf_is_refused_and_the_form_kept(app, client, world):
    login(client, app, world["speaker"])
    response = client.post(
        f"/ja/events/meeting-93/archive/talks/{world['talk']}/files",
        data={
            "file": (io.BytesIO(b"just some text, not a PDF"), "slides.pdf"),
            "title_ja": "講演スライド",
            "title_en": "My slides",
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "PDF、PowerPoint（.pptx）、PNG、JPEG のいずれでもありません" in html
    assert 'value="講演スライド"' in html
    assert 'value="My slides"' in html
    with database(app) as s:
        assert s.scalars(sa.select(ArchiveItem)).all() == []
    assert not list((Path(app.config["UPLOAD_FOLDER"]) / "archive").glob("*"))


def test_a_zip_that_is_not_powerpoint_is_refused(app, world):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    with database(app) as s, pytest.raises(archive.ArchiveError):
        archive.add_file(s, s.get(Talk, world["talk"]), buffer.getvalue(), "x.pptx", None)


def test_an_oversize_file_is_refused_with_the_limit_and_the_form_kept(app, client, world):
    with database(app) as s:
        row = s.scalar(sa.select(SeriesPlugin).where(SeriesPlugin.plugin == "archive"))
        row.settings = {"max_file_mb": 1}
        s.commit()
    login(client, app, world["organiser"])
    big = make_pdf("big") + b"\n%" + b"x" * (1024 * 1024)
    response = client.post(
        f"/en/events/meeting-93/archive/talks/{world['talk']}/files",
        data={"file": (io.BytesIO(big), "big.pdf"), "title_ja": "大きい資料", "title_en": ""},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The file is too large. Please choose a file of at most 1 MB." in html
    assert 'value="大きい資料"' in html
    with database(app) as s:
        assert s.scalars(sa.select(ArchiveItem)).all() == []
    # The same in Japanese.
    response = client.post(
        f"/ja/events/meeting-93/archive/talks/{world['talk']}/files",
        data={"file": (io.BytesIO(big), "big.pdf"), "title_ja": "大きい資料"},
        content_type="multipart/form-data",
    )
    assert "ファイルが大きすぎます。1 MB 以下のファイルを選んでください。" in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    "who, expected",
    [
        ("anonymous", 302),
        ("outsider", 404),
        ("member", 404),
        ("speaker2", 404),  # another talk's speaker
        ("other_org", 404),
        ("speaker", 200),
        ("organiser", 200),
        ("admin", 200),
    ],
)
def test_who_may_upload(app, client, world, who, expected):
    login(client, app, world[who])
    for url in (
        f"/ja/events/meeting-93/archive/talks/{world['talk']}/files",
        f"/ja/events/meeting-93/archive/talks/{world['talk']}/links",
    ):
        assert client.get(url).status_code == expected, url


def test_video_link_is_checked_and_opened_through_the_archive(app, client, world):
    login(client, app, world["organiser"])
    url = f"/ja/events/meeting-93/archive/talks/{world['talk']}/links"
    bad = client.post(url, data={"url": "javascript:alert(1)", "title_ja": "講演動画"})
    assert bad.status_code == 400
    assert "https:// で始まるアドレス" in bad.get_data(as_text=True)
    assert 'value="講演動画"' in bad.get_data(as_text=True)
    good = client.post(
        url, data={"url": "https://video.example/watch?v=abc", "title_ja": "講演動画"}
    )
    assert good.status_code == 302
    with database(app) as s:
        item_id = s.scalar(sa.select(ArchiveItem.id))
    login(client, app, world["member"])
    opened = client.get(f"/ja/archive/items/{item_id}")
    assert opened.status_code == 302
    assert opened.headers["Location"] == "https://video.example/watch?v=abc"
    assert opened.headers["Cache-Control"] == "private, no-store"
    login(client, app, world["outsider"])
    assert client.get(f"/ja/archive/items/{item_id}").status_code == 403


# -- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, expected, reason",
    [
        ("anonymous", 302, "anonymous"),
        ("outsider", 403, "none"),
        ("member", 200, "member"),
        ("speaker", 200, "speaker"),  # their own talk
        ("speaker2", 403, "none"),  # another speaker's talk
        ("organiser", 200, "organiser"),
        ("other_org", 403, "none"),  # organiser of another series
        ("admin", 200, "admin"),
    ],
)
def test_file_access_matrix_and_log(app, client, world, who, expected, reason):
    pdf = make_pdf("Hafnium")
    item_id = add_file(app, world["talk"], pdf, world=world)
    login(client, app, world[who])
    response = client.get(f"/ja/archive/items/{item_id}")
    assert response.status_code == expected
    if expected == 200:
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.data == pdf
        assert response.mimetype == "application/pdf"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    if expected == 302:
        assert "/ja/account/login" in response.headers["Location"]
    if expected == 403:
        html = response.get_data(as_text=True)
        assert "会員限定" in html
        assert "法人会員企業" in html
    with database(app) as s:
        rows = s.scalars(sa.select(ArchiveAccessLog)).all()
        assert [(r.item_id, r.talk_id, r.user_id, r.allowed, r.reason) for r in rows] == [
            (item_id, world["talk"], world[who], expected == 200, reason)
        ]
        assert rows[0].item_title == "slides.pdf"


def test_member_loses_access_when_the_membership_is_cancelled(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    login(client, app, world["member"])
    assert client.get(f"/ja/archive/items/{item_id}").status_code == 200
    with database(app) as s:
        from plugins.membership.models import Membership

        membership.cancel_membership(s, s.scalar(sa.select(Membership)), None)
        s.commit()
    assert client.get(f"/ja/archive/items/{item_id}").status_code == 403


def test_items_of_disabled_or_draft_events_are_not_found(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    login(client, app, world["member"])
    with database(app) as s:
        s.scalar(sa.select(SeriesPlugin).where(SeriesPlugin.plugin == "archive")).enabled = False
        s.commit()
    assert client.get(f"/ja/archive/items/{item_id}").status_code == 404
    assert client.get("/ja/events/meeting-93/archive/").status_code == 404
    assert client.get("/ja/archive/items/999999").status_code == 404
    with database(app) as s:
        assert s.scalars(sa.select(ArchiveAccessLog)).all() == []


def test_removing_an_item_deletes_the_file(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    with database(app) as s:
        stored = s.get(ArchiveItem, item_id).stored_name
    path = Path(app.config["UPLOAD_FOLDER"]) / "archive" / stored
    assert path.exists()
    login(client, app, world["speaker2"])
    assert client.post(f"/ja/events/meeting-93/archive/items/{item_id}/delete").status_code == 404
    login(client, app, world["speaker"])
    assert client.post(f"/ja/events/meeting-93/archive/items/{item_id}/delete").status_code == 302
    assert not path.exists()
    with database(app) as s:
        assert s.get(ArchiveItem, item_id) is None


# -- pages -----------------------------------------------------------------------------------


def test_everyone_sees_that_material_exists_and_how_to_get_access(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    page = client.get("/ja/series/study/archive/").get_data(as_text=True)
    assert "タンタルの精錬" in page
    assert "slides.pdf" in page
    assert f"/ja/archive/items/{item_id}" not in page
    assert "会員限定" in page
    member_page_client = app.test_client()
    login(member_page_client, app, world["member"])
    page = member_page_client.get("/ja/series/study/archive/").get_data(as_text=True)
    assert f"/ja/archive/items/{item_id}" in page
    assert "会員限定" not in page


def test_browse_by_year_and_speaker(app, client, world):
    add_file(app, world["talk"], world=world)
    add_file(app, world["talk2"], world=world)
    with database(app) as s:
        year = (
            s.get(Event, world["meeting"])
            .starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
            .year
        )
    index = client.get("/ja/series/study/archive/").get_data(as_text=True)
    assert f"{year}年" in index
    by_year = client.get(f"/ja/series/study/archive/?year={year}").get_data(as_text=True)
    assert "タンタルの精錬" in by_year and "ニオブの市場" in by_year
    empty = client.get(f"/ja/series/study/archive/?year={year - 5}").get_data(as_text=True)
    assert "タンタルの精錬" not in empty
    speakers = client.get("/en/series/study/archive/speakers").get_data(as_text=True)
    assert "Ichiro Suzuki" in speakers and "Hanako Tanaka" in speakers
    by_speaker = client.get(f"/en/series/study/archive/?speaker={world['speaker']}")
    # speaker= takes the person id; the user and person ids differ in general.
    with database(app) as s:
        person_id = s.get(User, world["speaker"]).person_id
    by_speaker = client.get(f"/en/series/study/archive/?speaker={person_id}").get_data(as_text=True)
    assert "Refining tantalum" in by_speaker and "The niobium market" not in by_speaker


def _count_queries(app, client, url) -> int:
    engine = app.extensions["portal_db"]["engine"]
    statements = []

    def count(*args, **kwargs):
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_archive_pages_issue_a_constant_number_of_queries(app, client, world):
    add_file(app, world["talk"], world=world)
    login(client, app, world["member"])
    urls = [
        "/ja/series/study/archive/",
        "/ja/series/study/archive/speakers",
        "/ja/events/meeting-93/",
        "/ja/events/meeting-93/archive/",
    ]
    before = [_count_queries(app, client, url) for url in urls]
    with database(app) as s:
        event = s.get(Event, world["meeting"])
        for n in range(5):
            person = f.person(s)
            talk = f.talk(s, event, person, position=10 + n)
            archive.add_file(s, talk, PNG, f"p{n}.png", None)
            archive.add_link(s, talk, f"https://video.example/{n}", None)
        s.commit()
    after = [_count_queries(app, client, url) for url in urls]
    assert after == before


def test_access_log_is_for_organisers_and_paginated(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    login(client, app, world["member"])
    for _ in range(55):
        client.get(f"/ja/archive/items/{item_id}")
    login(client, app, world["outsider"])
    assert client.get("/ja/series/study/archive/log").status_code == 404
    login(client, app, world["other_org"])
    assert client.get("/ja/series/study/archive/log").status_code == 404
    login(client, app, None)
    assert client.get("/ja/series/study/archive/log").status_code == 302
    login(client, app, world["organiser"])
    first = client.get("/ja/series/study/archive/log").get_data(as_text=True)
    assert first.count("ichiro@kakuu-metal.co.jp") == 50
    assert "閲覧履歴" in first
    second = client.get("/ja/series/study/archive/log?page=2").get_data(as_text=True)
    assert second.count("ichiro@kakuu-metal.co.jp") == 5


# -- hooks -----------------------------------------------------------------------------------


def _hook_calls(app, world, user_key, hook, **kw):
    from portal import plugins

    with app.test_request_context("/ja/"):
        from flask import g

        g.lang_code = "ja"
        from portal.events.services import event_with_programme

        event = event_with_programme(db.session, "meeting-93")
        user = db.session.get(User, world[user_key]) if world[user_key] else None
        if user is None:
            from flask_login import AnonymousUserMixin

            user = AnonymousUserMixin()
        if hook == "talk_links":
            talk = next(t for t in event.talks if t.id == world["talk"])
            return plugins.collect(plugins.event_hooks(event).talk_links(talk=talk, user=user))
        return plugins.call_event_hook(hook, event, user=user)


def test_hook_talk_links_archive(app, world):
    item_id = add_file(app, world["talk"], world=world)
    links = _hook_calls(app, world, "member", "talk_links")
    assert [(link.label, link.url, link.plugin) for link in links] == [
        ("slides.pdf (PDF)", f"/ja/archive/items/{item_id}", "archive")
    ]
    assert _hook_calls(app, world, "speaker", "talk_links")[0].url == f"/ja/archive/items/{item_id}"
    assert _hook_calls(app, world, "outsider", "talk_links") == []
    assert _hook_calls(app, world, "anonymous", "talk_links") == []


def test_hook_event_sections_archive(app, client, world):
    item_id = add_file(app, world["talk"], world=world)
    sections = "".join(str(b) for b in _hook_calls(app, world, "outsider", "event_sections"))
    assert "講演資料アーカイブ" in sections
    assert "slides.pdf" in sections
    assert f"/ja/archive/items/{item_id}" not in sections
    assert "会員限定" in sections
    member = "".join(str(b) for b in _hook_calls(app, world, "member", "event_sections"))
    assert f"/ja/archive/items/{item_id}" in member
    # On the event page itself, with the talk links beside the programme.
    login(client, app, world["member"])
    page = client.get("/ja/events/meeting-93/").get_data(as_text=True)
    assert page.count(f"/ja/archive/items/{item_id}") == 2


def test_hook_event_tabs_archive(app, world):
    # No material yet: only those who may upload see the tab.
    assert [t.plugin for t in _hook_calls(app, world, "speaker", "event_tabs")].count(
        "archive"
    ) == 1
    assert [t.plugin for t in _hook_calls(app, world, "member", "event_tabs")].count("archive") == 0
    add_file(app, world["talk"], world=world)
    tabs = [t for t in _hook_calls(app, world, "member", "event_tabs") if t.plugin == "archive"]
    assert [(t.label, t.url) for t in tabs] == [
        ("講演資料アーカイブ", "/ja/events/meeting-93/archive/")
    ]


def test_hook_dashboard_panels_archive(app, world):
    add_file(app, world["talk"], world=world)
    panels = [
        str(p)
        for p in _hook_calls(app, world, "organiser", "dashboard_panels")
        if "archive-panel" in str(p)
    ]
    assert len(panels) == 1
    assert "/ja/series/study/archive/log" in panels[0]
    assert [
        p
        for p in _hook_calls(app, world, "member", "dashboard_panels")
        if "archive-panel" in str(p)
    ] == []


def test_hook_personal_data_archive(app, client, world):
    item_id = add_file(app, world["talk"], world=world, user_key="speaker")
    login(client, app, world["speaker"])
    client.get(f"/ja/archive/items/{item_id}")
    with database(app) as s:
        person = s.get(User, world["speaker"]).person
        data = app.extensions["portal_plugins"].hook.personal_data(person=person)
        mine = next(d for d in data if "access_log" in d)
        assert [(r["item"], r["allowed"], r["reason"]) for r in mine["access_log"]] == [
            ("slides.pdf", True, "speaker")
        ]
        assert [(u["original_name"], u["kind"]) for u in mine["uploads"]] == [
            ("slides.pdf", "file")
        ]


def test_hook_forget_person_archive(app, client, world):
    item_id = add_file(app, world["talk"], world=world, user_key="speaker")
    login(client, app, world["speaker"])
    client.get(f"/ja/archive/items/{item_id}")
    with database(app) as s:
        person = s.get(User, world["speaker"]).person
        app.extensions["portal_plugins"].hook.forget_person(person=person)
        s.commit()
        row = s.scalar(sa.select(ArchiveAccessLog))
        assert (row.user_id, row.allowed, row.item_title) == (None, True, "slides.pdf")
        assert s.get(ArchiveItem, item_id).uploaded_by_id is None


def test_fold_makes_full_width_and_broken_lines_findable():
    assert files.fold("ＨＡＦＮＩＵＭ  分離\n技術") == "hafnium分離技術"
    assert archive.query_terms("  Ｈａｆｎｉｕｍ 分離技術 ") == ["hafnium", "分離技術"]


def test_upload_checks_the_csrf_token_itself(app_config, database_url, world):
    """The upload view is exempt from the app-wide check (so that its own size limit applies
    before the form is read) and its form checks the token."""
    from portal.app import create_app

    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    login(client, app, world["speaker"])
    response = client.post(
        f"/en/events/meeting-93/archive/talks/{world['talk']}/files",
        data={"file": (io.BytesIO(make_pdf("x")), "x.pdf"), "title_en": "Kept"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The form had expired" in html
    assert 'value="Kept"' in html
    with database(app) as s:
        assert s.scalars(sa.select(ArchiveItem)).all() == []
    app.extensions["portal_db"]["engine"].dispose()


def test_files_larger_than_the_app_wide_request_limit_are_accepted_up_to_the_setting(
    app, client, world
):
    """The app refuses requests over MAX_CONTENT_LENGTH (20 MB); the archive's own limit
    (50 MB by default) applies to its upload form instead."""
    assert app.config["MAX_CONTENT_LENGTH"] < 25 * 1024 * 1024
    login(client, app, world["organiser"])
    image = PNG + b"\x00" * (25 * 1024 * 1024)
    response = client.post(
        f"/en/events/meeting-93/archive/talks/{world['talk']}/files",
        data={"file": (io.BytesIO(image), "poster.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with database(app) as s:
        item = s.scalar(sa.select(ArchiveItem))
        assert (item.file_type, item.size, item.title) == (
            FileType.png,
            len(image),
            BilingualText(ja="poster.png", en="poster.png"),
        )


def test_years_and_speakers_count_only_meetings_of_the_archive(app, monkeypatch):
    """The years are probed one by one (a year without material is left out, a draft's and
    another series' material never count, a year is the series' local one) and the speakers
    are walked by reading: only people with material in this archive, each with their talks
    with material counted."""
    from portal.events.models import EventStatus

    with database(app) as s:
        study = f.series(s, slug="years-study")
        other = f.series(s, slug="years-other")
        f.enable_for_series(s, study, "archive")
        f.enable_for_series(s, other, "archive")

        def person(kana: str, roman: str):
            return f.person(s, family_name_kana=kana, given_name_kana="", romanized_name=roman)

        late, early, silent, elsewhere = (
            person("わだ", "Wada"),
            person("あべ", "Abe"),
            person("かとう", "Kato"),
            person("いとう", "Ito"),
        )

        def meeting(series, starts_at, status=EventStatus.closed):
            return f.event(s, series, starts_at=starts_at, status=status)

        def material(event, speaker, position=1):
            talk = f.talk(s, event, speaker, position=position)
            archive.add_link(s, talk, f"https://video.example/{talk.id}", None)
            return talk

        # 31 Dec 2018 16:00 UTC is 1 Jan 2019 in Tokyo.
        material(meeting(study, f.at(2018, 12, 31, 16)), late)
        material(meeting(study, f.at(2023, 5, 1)), late)
        material(meeting(study, f.at(2023, 6, 1)), early)
        f.talk(s, meeting(study, f.at(2021, 5, 1)), silent)  # a talk without material
        material(meeting(study, f.at(2020, 5, 1), EventStatus.draft), silent)
        material(meeting(other, f.at(2016, 5, 1)), elsewhere)
        s.commit()
        study = s.get(type(study), study.id)
        assert archive.archive_years(s, study) == [2023, 2019]
        rows = s.execute(archive.archive_speakers(study)).all()
        assert [(p.romanized_name, n) for p, n in rows] == [("Abe", 1), ("Wada", 2)]
        assert archive.archive_speaker(s, study, silent.id) is None
        assert archive.archive_speaker(s, study, late.id).id == late.id
        assert archive.archive_years(s, other) == [2016]
        # A span too long to probe year by year (dates typed wrong) is grouped instead.
        monkeypatch.setattr(archive, "MAX_YEAR_PROBES", 2)
        assert archive.archive_years(s, study) == [2023, 2019]
