"""Name badges (名札): who gets one, names and roles, layouts, shrink-to-fit, PDF rendering."""

from __future__ import annotations

import pytest

from portal.db import db
from portal.registration import services as registrations
from portal.tickets import pdf
from tests import factories as f
from tests import pdfcheck
from tests.pdfcheck import needs_poppler


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def register(session, event, person, mode="onsite", user=None):
    return registrations.register(
        session, event, person, mode=mode, privacy_accepted=True, user=user
    )


@pytest.fixture
def hall(app):
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        organiser = f.user(
            s,
            roles=(("organiser", series),),
            family_name="鈴木",
            given_name="一郎",
            family_name_kana="すずき",
            given_name_kana="いちろう",
            affiliation="事務局",
        )
        speaker = f.person(
            s,
            family_name="高橋",
            given_name="健",
            family_name_kana="たかはし",
            given_name_kana="けん",
            affiliation="東北金属大学",
        )
        f.talk(s, event, speaker)
        member = f.user(
            s,
            roles=(("member", series),),
            family_name="佐藤",
            given_name="花子",
            family_name_kana="さとう",
            given_name_kana="はなこ",
            affiliation="架空金属株式会社",
        )
        foreign = f.person(
            s,
            family_name="",
            given_name="",
            family_name_kana="",
            given_name_kana="",
            romanized_name="Jane Miller",
            affiliation="Boston Institute",
            preferred_language="en",
        )
        long_name = f.person(
            s,
            family_name="勅使河原",
            given_name="美智代",
            family_name_kana="てしがわら",
            given_name_kana="みちよ",
            affiliation="国立研究開発法人 物質・材料研究機構 先端材料プロセスユニット 希少金属研究グループ",
        )
        online = f.person(s, family_name="中村", given_name="遠隔", family_name_kana="なかむら")
        regs = {
            "organiser": register(s, event, organiser.person, user=organiser),
            "speaker": register(s, event, speaker),
            "member": register(s, event, member.person, user=member),
            "foreign": register(s, event, foreign),
            "long": register(s, event, long_name),
        }
        register(s, event, online, mode="online")
        s.commit()
        return {
            "slug": event.slug,
            "event_id": event.id,
            "organiser": organiser,
            "ids": {k: r.id for k, r in regs.items()},
        }


def test_badges_page_lists_on_site_participants_with_roles(client, hall):
    login(client, hall["organiser"])
    page = client.get(f"/en/organiser/events/{hall['slug']}/badges/")
    assert page.status_code == 200
    assert "Jane Miller" in page.text
    assert "中村" not in page.text  # online
    for key in ("organiser", "speaker", "member"):
        assert f'value="{hall["ids"][key]}"' in page.text
    assert "Organising staff" in page.text and "Speaker" in page.text and "Member" in page.text
    jp = client.get(f"/ja/organiser/events/{hall['slug']}/badges/")
    assert "事務局" in jp.text and "講演者" in jp.text and "会員" in jp.text


def test_badges_need_an_organiser(client, hall, app):
    assert client.get(f"/en/organiser/events/{hall['slug']}/badges.pdf").status_code == 302
    with app.app_context():
        somebody = f.user(db.session)
        db.session.commit()
    login(client, somebody)
    assert client.get(f"/en/organiser/events/{hall['slug']}/badges.pdf").status_code == 404


@needs_poppler
def test_badges_pdf_names_roles_and_rendering(client, hall, tmp_path):
    login(client, hall["organiser"])
    r = client.get(f"/en/organiser/events/{hall['slug']}/badges.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = pdfcheck.text(r.data, tmp_path, layout=False)
    for word in ("佐藤", "花子", "高橋", "健", "Jane Miller", "東北金属大学", "Boston Institute"):
        assert word in text
    # Roles in the badge's own language.
    assert "講演者" in text and "事務局" in text and "会員" in text
    # The long name and affiliation are shrunk, never cut.
    assert "勅使河原" in text
    # (a long affiliation goes on two lines)
    assert "国立研究開発法人 物質・材料研究機構" in text
    assert "先端材料プロセスユニット 希少金属研究グループ" in text
    assert "IPAexGothic" in pdfcheck.fonts(r.data, tmp_path)
    assert pdfcheck.pages(r.data, tmp_path) == 1
    image = pdfcheck.render(r.data, tmp_path)
    assert 0.01 < pdfcheck.ink(image) < 0.5


def _badge_lines(client, hall, key, tmp_path, **args) -> list[str]:
    r = client.get(
        f"/en/organiser/events/{hall['slug']}/badges.pdf",
        query_string={"r": [hall["ids"][key]], **args},
    )
    text = pdfcheck.text(r.data, tmp_path, layout=False)
    return [line.strip() for line in text.splitlines() if line.strip()]


@needs_poppler
def test_one_badge_each(client, hall, tmp_path):
    login(client, hall["organiser"])
    # Japanese: the family name large on its own line, then the given name.
    assert _badge_lines(client, hall, "member", tmp_path) == [
        "佐藤",
        "花子",
        "架空金属株式会社",
        "会員",
    ]
    assert _badge_lines(client, hall, "speaker", tmp_path) == [
        "高橋",
        "健",
        "東北金属大学",
        "講演者",
    ]
    # English: the given name first.
    assert _badge_lines(client, hall, "foreign", tmp_path) == ["Jane Miller", "Boston Institute"]
    assert (
        _badge_lines(client, hall, "organiser", tmp_path, language="en")[-1] == "Organising staff"
    )


@needs_poppler
def test_badges_selection_layout_language_and_qr(client, hall, tmp_path):
    login(client, hall["organiser"])
    base = f"/en/organiser/events/{hall['slug']}/badges.pdf"
    only = client.get(base, query_string={"r": [hall["ids"]["member"]], "language": "en"})
    text = pdfcheck.text(only.data, tmp_path)
    assert "佐藤" not in text and "高橋" not in text
    assert "Taro Yamada" in text  # the factory's romanised name: given name first
    assert "Member" in text
    plain = pdfcheck.render(only.data, tmp_path)
    with_qr = client.get(
        base, query_string={"r": [hall["ids"]["member"]], "language": "en", "qr": "1"}
    )
    assert pdfcheck.ink(pdfcheck.render(with_qr.data, tmp_path)) > pdfcheck.ink(plain)
    # Six per sheet: five badges on one sheet; ten per sheet with everyone.
    six = client.get(base, query_string={"layout": "a4-6"})
    assert pdfcheck.pages(six.data, tmp_path) == 1
    assert client.get(base, query_string={"layout": "bogus"}).status_code == 400


def test_shrink_to_fit_never_cuts():
    gothic, _ = pdf.register_fonts()
    from reportlab.pdfbase.pdfmetrics import stringWidth

    width = 60
    name = "Maximilian Alexander von Hohenzollern-Sigmaringen"
    size = pdf.fit_size(name, gothic, 30, width)
    assert size < 30
    assert stringWidth(name, gothic, size) <= width + 0.01
    assert pdf.fit_size("佐藤", gothic, 30, 200) == 30


def test_layouts_fit_on_a4():
    for layout in pdf.LAYOUTS.values():
        assert (
            layout.left * 2 + layout.columns * layout.width + (layout.columns - 1) * layout.gap_x
            <= 210
        )
        assert (
            layout.top * 2 + layout.rows * layout.height + (layout.rows - 1) * layout.gap_y <= 297
        )


def test_badge_names():
    class P:
        family_name, given_name, romanized_name, affiliation = "山田", "太郎", "Taro Yamada", "X"

    ja = pdf.badge_for(P, "会員", "ja", None)
    assert (ja.large, ja.small) == ("山田", "太郎")
    en = pdf.badge_for(P, "Member", "en", None)
    assert (en.large, en.small) == ("Taro Yamada", "")
