"""Organisers: access, creating and editing records, affiliations, the talk's speaker, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts.models import Person
from portal.audit import AuditEntry
from portal.events.models import Talk
from portal.i18n import BilingualText
from portal.speakers import services
from portal.speakers.models import Affiliation, SpeakerProfile
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_speakers_support import login, organiser, speaker


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


FORM = {
    "family_name": "佐藤",
    "given_name": "健",
    "family_name_kana": "さとう",
    "given_name_kana": "けん",
    "romanized_name": "Ken Sato",
    "email": "ken.sato@example.org",
    "preferred_language": "en",
    "country": "jp",
    "title_ja": "博士",
    "title_en": "Dr.",
    "position_ja": "主任研究員",
    "position_en": "Principal researcher",
    "biography_ja": "略歴です。",
    "biography_en": "A biography.",
    "self_introduction_ja": "自己紹介です。",
    "self_introduction_en": "A self-introduction.",
    "links": "Lab | https://lab.example.org/\nhttps://example.org/ken",
    "publish_consent": "y",
}


def test_organiser_pages_need_an_organiser(app, client, dbs):
    profile = speaker(dbs)
    member = f.user(dbs)
    dbs.commit()
    pages = [
        "/ja/organiser/speakers/",
        "/ja/organiser/speakers/new",
        f"/ja/organiser/speakers/{profile.person_id}/edit",
        "/ja/organiser/speakers/export.csv",
        "/ja/organiser/speakers/duplicates",
        "/ja/organiser/speakers/merges/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/account/login" in response.headers["Location"]
    login(client, member)
    for url in pages:
        assert client.get(url).status_code == 403, url
    response = client.post(f"/ja/organiser/speakers/{profile.person_id}/edit", data=FORM)
    assert response.status_code == 403
    assert dbs.get(Person, profile.person_id).family_name != "佐藤"


def test_series_organiser_may_edit_shared_records(app, client, dbs):
    series = f.series(dbs)
    user = f.user(dbs, roles=(("organiser", series),))
    profile = speaker(dbs)
    dbs.commit()
    login(client, user)
    assert client.get(f"/en/organiser/speakers/{profile.person_id}/edit").status_code == 200


def test_create_and_edit_a_speaker_record(app, client, dbs):
    login(client, organiser(dbs))
    dbs.commit()
    response = client.post("/en/organiser/speakers/new", data=FORM)
    assert response.status_code == 302
    person = dbs.scalar(sa.select(Person).where(Person.romanized_name == "Ken Sato"))
    profile = dbs.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    assert (person.family_name, person.given_name, person.family_name_kana) == (
        "佐藤",
        "健",
        "さとう",
    )
    assert (person.email, person.preferred_language, person.country) == (
        "ken.sato@example.org",
        "en",
        "JP",
    )
    assert profile.title == BilingualText(ja="博士", en="Dr.")
    assert profile.position == BilingualText(ja="主任研究員", en="Principal researcher")
    assert profile.biography == BilingualText(ja="略歴です。", en="A biography.")
    assert profile.self_introduction == BilingualText(
        ja="自己紹介です。", en="A self-introduction."
    )
    assert profile.links == [
        {"label": "Lab", "url": "https://lab.example.org/"},
        {"label": "", "url": "https://example.org/ken"},
    ]
    assert profile.publish_consent is True
    assert response.headers["Location"].endswith(f"/en/organiser/speakers/{person.id}/edit")

    edit = client.get(f"/en/organiser/speakers/{person.id}/edit")
    assert edit.status_code == 200
    assert 'value="Ken Sato"' in edit.text
    changed = dict(FORM, biography_en="A new biography.", publish_consent="")
    response = client.post(f"/en/organiser/speakers/{person.id}/edit", data=changed)
    assert response.status_code == 302
    dbs.commit()
    assert profile.biography == BilingualText(ja="略歴です。", en="A new biography.")
    assert profile.publish_consent is False
    actions = dbs.scalars(
        sa.select(AuditEntry.action).where(
            AuditEntry.subject_type == "speaker", AuditEntry.subject_id == person.id
        )
    ).all()
    assert actions == ["created", "updated"]


def test_bad_input_keeps_what_was_typed(app, client, dbs):
    login(client, organiser(dbs))
    dbs.commit()
    bad = dict(
        FORM,
        family_name="",
        given_name="",
        romanized_name="",
        links="not a link",
        family_name_kana="Sato",
    )
    response = client.post("/en/organiser/speakers/new", data=bad)
    assert response.status_code == 400
    assert "Please enter the name in Japanese script or in Latin letters." in response.text
    assert "Line 1 is not a web address starting with https:// or http://." in response.text
    assert "Please write the reading in kana." in response.text
    assert "A biography." in response.text and "自己紹介です。" in response.text
    assert dbs.scalar(sa.select(sa.func.count()).select_from(SpeakerProfile)) == 0


def test_creating_a_likely_duplicate_needs_confirmation(app, client, dbs):
    speaker(dbs, family_name="佐藤", given_name="健", romanized_name="Sato Ken")
    login(client, organiser(dbs))
    dbs.commit()
    response = client.post("/en/organiser/speakers/new", data=FORM)
    assert response.status_code == 400
    assert "Similar speaker records exist." in response.text
    assert dbs.scalar(sa.select(sa.func.count()).select_from(SpeakerProfile)) == 1
    dbs.commit()
    response = client.post("/en/organiser/speakers/new", data=dict(FORM, confirm_new="y"))
    assert response.status_code == 302
    assert dbs.scalar(sa.select(sa.func.count()).select_from(SpeakerProfile)) == 2


def test_affiliation_history_and_current_affiliation(app, client, dbs):
    profile = speaker(dbs, affiliation="")
    login(client, organiser(dbs))
    dbs.commit()
    url = f"/ja/organiser/speakers/{profile.person_id}/affiliations"
    old = {
        "aff-organisation_ja": "架空大学",
        "aff-organisation_en": "Fictional University",
        "aff-affiliation_position_ja": "助教",
        "aff-started_on": "2001-04-01",
        "aff-ended_on": "2010-03-31",
    }
    assert client.post(url, data=old).status_code == 302
    new = {
        "aff-organisation_ja": "架空金属株式会社",
        "aff-organisation_en": "Kakuu Metals",
        "aff-affiliation_position_en": "CTO",
        "aff-started_on": "2010-04-01",
    }
    assert client.post(url, data=new).status_code == 302
    bad = client.post(url, data={"aff-started_on": "2010-04-01", "aff-ended_on": "2001-01-01"})
    assert bad.status_code == 400
    assert "終了日は開始日より後の日付にしてください。" in bad.text
    assert "所属を入力してください。" in bad.text
    dbs.commit()  # a new transaction sees what the requests did
    rows = dbs.scalars(
        sa.select(Affiliation)
        .where(Affiliation.person_id == profile.person_id)
        .order_by(Affiliation.id)
    ).all()
    assert [(r.organisation.ja, r.started_on, r.ended_on) for r in rows] == [
        ("架空大学", date(2001, 4, 1), date(2010, 3, 31)),
        ("架空金属株式会社", date(2010, 4, 1), None),
    ]
    dbs.commit()
    assert services.get_profile(dbs, profile.person_id).current_affiliation.id == rows[1].id
    assert dbs.get(Person, profile.person_id).affiliation == "架空金属株式会社"
    page = client.get(f"/en/speakers/{profile.person_id}/").text
    assert "Kakuu Metals" in page and "Fictional University" in page


def test_attach_existing_or_new_speaker_to_a_talk(app, client, dbs):
    series = f.series(dbs)
    event = f.event(dbs, series)
    talk = f.talk(dbs, event)
    existing = speaker(dbs, family_name="山田", given_name="花子", romanized_name="Hanako Yamada")
    login(client, f.user(dbs, roles=(("organiser", series),)))
    dbs.commit()
    url = f"/ja/organiser/talks/{talk.id}/speaker"
    page = client.get(url, query_string={"q": "YAMADA"})
    assert page.status_code == 200
    assert f'name="pick-speaker_id" value="{existing.person_id}"' in page.text
    response = client.post(url, data={"action": "pick", "pick-speaker_id": existing.person_id})
    assert response.status_code == 302
    dbs.commit()
    assert dbs.get(Talk, talk.id).speaker_id == existing.person_id

    response = client.post(
        url,
        data={
            "action": "create",
            "new-family_name": "新井",
            "new-given_name": "誠",
            "new-romanized_name": "Makoto Arai",
            "new-preferred_language": "ja",
        },
    )
    assert response.status_code == 302
    dbs.commit()
    new = dbs.get(Talk, talk.id).speaker
    assert (new.family_name, new.romanized_name) == ("新井", "Makoto Arai")
    assert services.get_profile(dbs, new.id) is not None
    response = client.post(
        url,
        data={
            "action": "intro",
            "intro-talk_intro_ja": "この回のための自己紹介",
            "intro-talk_intro_en": "",
        },
    )
    assert response.status_code == 302
    dbs.commit()
    assert dbs.get(Talk, talk.id).self_introduction == BilingualText(ja="この回のための自己紹介")


def test_talk_speaker_page_for_another_series_answers_404(app, client, dbs):
    mine, theirs = f.series(dbs), f.series(dbs)
    talk = f.talk(dbs, f.event(dbs, theirs))
    login(client, f.user(dbs, roles=(("organiser", mine),)))
    dbs.commit()
    assert client.get(f"/ja/organiser/talks/{talk.id}/speaker").status_code == 404
    assert client.get("/ja/organiser/talks/999999/speaker").status_code == 404


def test_export_csv_utf8_with_bom(app, client, dbs):
    first = speaker(
        dbs,
        family_name="山田",
        given_name="太郎",
        family_name_kana="やまだ",
        given_name_kana="たろう",
        romanized_name="Taro Yamada",
        email="taro@example.org",
        country="JP",
        affiliation="",
        organisation=BilingualText(ja="東京大学", en="The University of Tokyo"),
        biography=BilingualText(ja="略歴", en="Bio"),
    )
    second = speaker(
        dbs,
        consent=False,
        family_name="",
        given_name="",
        family_name_kana="",
        given_name_kana="",
        romanized_name="=cmd|' /C calc'!A0",
        email=None,
        affiliation="",
    )
    f.talk(dbs, f.event(dbs), speaker=first.person)
    login(client, organiser(dbs))
    dbs.commit()
    response = client.get("/en/organiser/speakers/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="speakers.csv"'
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:7] == [
        "ID",
        "Family name",
        "Given name",
        "Family name (kana)",
        "Given name (kana)",
        "Name in Latin letters",
        "Email",
    ]
    by_id = {row[0]: row for row in rows[1:]}
    header = rows[0]
    taro = dict(zip(header, by_id[str(first.person_id)], strict=True))
    assert taro["Family name"] == "山田"
    assert taro["Email"] == "taro@example.org"
    assert taro["Affiliation (Japanese)"] == "東京大学"
    assert taro["Affiliation (English)"] == "The University of Tokyo"
    assert taro["Biography (English)"] == "Bio"
    assert taro["Consent to publish"] == "1"
    assert taro["Talks"] == "1"
    other = dict(zip(header, by_id[str(second.person_id)], strict=True))
    assert other["Name in Latin letters"] == "'=cmd|' /C calc'!A0"  # no formula
    assert other["Talks"] == "0"
    assert len(rows) == 3


def test_every_speaker_page_renders_in_both_languages(app, client, dbs):
    keep = speaker(dbs, romanized_name="Taro Yamada", organisation=BilingualText(ja="東京大学"))
    other = speaker(dbs, romanized_name="YAMADA Taro")
    talk = f.talk(dbs, f.event(dbs), speaker=keep.person)
    login(client, organiser(dbs))
    dbs.commit()
    with app.test_request_context():
        invitation, token = services.invite_speaker(dbs, keep.person, "k@example.org", None)
    dbs.commit()
    merge_id = None
    pages = [
        "speakers/",
        "speakers/?q=yamada",
        f"speakers/{keep.person_id}/",
        f"speakers/invitation/{token}/",
        "organiser/speakers/",
        "organiser/speakers/new",
        f"organiser/speakers/{keep.person_id}/edit",
        "organiser/speakers/duplicates",
        f"organiser/speakers/merge?a={keep.person_id}&b={other.person_id}",
        "organiser/speakers/merges/",
        f"organiser/talks/{talk.id}/speaker",
        f"organiser/talks/{talk.id}/speaker?q=taro",
    ]
    for lang in ("ja", "en"):
        for page in pages:
            response = client.get(f"/{lang}/{page}")
            assert response.status_code == 200, (lang, page)
            assert f'<html lang="{lang}">' in response.text
            assert 'name="viewport"' in response.text
    with app.test_request_context():
        merge_id = services.merge_speakers(dbs, keep.person, other.person, None).id
    dbs.commit()
    for lang in ("ja", "en"):
        assert client.get(f"/{lang}/organiser/speakers/merges/{merge_id}").status_code == 200
        assert client.get(f"/{lang}/organiser/speakers/{other.person_id}/edit").status_code == 200


def test_forms_work_with_csrf_protection(app, client, dbs):
    import re

    app.config["WTF_CSRF_ENABLED"] = True
    profile = speaker(dbs, romanized_name="Taro Yamada")
    login(client, organiser(dbs))
    dbs.commit()
    url = f"/en/organiser/speakers/{profile.person_id}/edit"
    assert client.post(url, data=FORM).status_code == 400  # no token
    page = client.get(url).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post(url, data=dict(FORM, csrf_token=token)).status_code == 302
    aff = re.search(r'name="aff-csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/en/organiser/speakers/{profile.person_id}/affiliations",
        data={"aff-csrf_token": aff, "aff-organisation_en": "MIT"},
    )
    assert response.status_code == 302
