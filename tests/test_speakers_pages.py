"""The public speaker page: names, consent, talks in either series newest first, plugin links,
a constant number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import url_for

from portal.events.models import EventStatus
from portal.hookspecs import hookimpl
from portal.i18n import BilingualText
from portal.plugins import Tab
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_speakers_support import count_queries, login, speaker


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


def _yamada(dbs, consent=True):
    return speaker(
        dbs,
        consent=consent,
        family_name="山田",
        given_name="太郎",
        family_name_kana="やまだ",
        given_name_kana="たろう",
        romanized_name="Taro Yamada",
        affiliation="",
        organisation=BilingualText(ja="東京大学", en="The University of Tokyo"),
        biography=BilingualText(ja="略歴の本文", en="Biography text"),
        self_introduction=BilingualText(ja="自己紹介の本文", en=""),
    )


def test_speaker_page_names_in_readers_convention(app, client, dbs):
    profile = _yamada(dbs)
    dbs.commit()
    ja = client.get(f"/ja/speakers/{profile.person_id}/")
    en = client.get(f"/en/speakers/{profile.person_id}/")
    assert ja.status_code == 200 and en.status_code == 200
    assert '<span class="speaker-name">山田 太郎</span>' in ja.text
    assert "（やまだ たろう）" in ja.text
    assert '<span class="speaker-name">Taro Yamada</span>' in en.text
    assert "やまだ" not in en.text


def test_consent_shows_profile_in_readers_language_with_fallback(app, client, dbs):
    profile = _yamada(dbs)
    dbs.commit()
    ja = client.get(f"/ja/speakers/{profile.person_id}/").text
    en = client.get(f"/en/speakers/{profile.person_id}/").text
    assert "略歴の本文" in ja and "Biography text" not in ja
    assert "Biography text" in en and "略歴の本文" not in en
    assert "東京大学" in ja and "The University of Tokyo" in en
    # No English self-introduction: the Japanese one is shown, marked as Japanese.
    assert '<div class="long-text" lang="ja">自己紹介の本文</div>' in en


def test_without_consent_only_name_and_talks(app, client, dbs):
    profile = _yamada(dbs, consent=False)
    event = f.event(dbs)
    f.talk(
        dbs,
        event,
        speaker=profile.person,
        title=BilingualText(ja="チタンの話", en="On titanium"),
    )
    dbs.commit()
    page = client.get(f"/ja/speakers/{profile.person_id}/").text
    assert "山田 太郎" in page
    assert "チタンの話" in page
    for hidden in ("略歴の本文", "自己紹介の本文", "東京大学", "略歴", "自己紹介</h2>"):
        assert hidden not in page


def test_talks_in_both_series_newest_first(app, client, dbs):
    profile = _yamada(dbs)
    study = f.series(dbs, "study_group")
    workshop = f.series(dbs, "workshop")
    old = f.event(dbs, study, starts_at=f.at(2019, 11, 6, 5))
    middle = f.event(dbs, workshop, starts_at=f.at(2021, 6, 1, 2))  # 31 May in New York
    new = f.event(dbs, study, starts_at=f.at(2023, 3, 3, 5))
    draft = f.event(dbs, study, starts_at=f.at(2024, 1, 1, 5), status=EventStatus.draft)
    for event, title in (
        (old, "古い講演"),
        (new, "新しい講演"),
        (middle, "Workshop talk"),
        (draft, "下書きの講演"),
    ):
        f.talk(
            dbs,
            event,
            speaker=profile.person,
            title=BilingualText(ja=title, en=title),
            language="en" if event is middle else "ja",
        )
    dbs.commit()
    page = client.get(f"/ja/speakers/{profile.person_id}/").text
    titles = re.findall(r'<strong class="talk-title"[^>]*>([^<]+)</strong>', page)
    assert titles == ["新しい講演", "Workshop talk", "古い講演"]
    assert "2021年5月31日" in page  # the workshop's date in its own zone (New York)
    assert "2021年6月1日" not in page
    assert "2019年11月6日" in page
    assert f'href="/ja/events/{middle.slug}/"' in page
    assert f'href="/ja/events/{old.slug}/"' in page
    assert "ワークショップ" in page and "レアメタル研究会" in page
    english = client.get(f"/en/speakers/{profile.person_id}/").text
    assert english.count("Language: English") == 1
    assert english.count("Language: 日本語") == 2


def test_unknown_and_merged_speakers(app, client, dbs):
    assert client.get("/ja/speakers/999999/").status_code == 404
    person = f.person(dbs)  # not a speaker
    dbs.commit()
    assert client.get(f"/ja/speakers/{person.id}/").status_code == 404


class LinksPlugin:
    """A plugin offering a "Slides" link beside every talk of the events it is enabled on."""

    name = "speaker_test_links"
    label = "Test links"
    description = "Test links"
    default_settings: dict = {}

    @hookimpl
    def talk_links(self, talk, user):
        return [Tab(label=f"Slides {talk.id}", url=f"/slides/{talk.id}", plugin=self.name)]


def test_hook_talk_links_shown_beside_talks_where_enabled(app, client, dbs):
    app.extensions["portal_plugins"].register(LinksPlugin(), name=LinksPlugin.name)
    profile = _yamada(dbs)
    enabled = f.event(dbs, starts_at=f.at(2022, 1, 1))
    disabled = f.event(dbs, starts_at=f.at(2021, 1, 1))
    f.enable(dbs, enabled, LinksPlugin.name)
    on = f.talk(dbs, enabled, speaker=profile.person)
    off = f.talk(dbs, disabled, speaker=profile.person)
    dbs.commit()
    page = client.get(f"/en/speakers/{profile.person_id}/").text
    assert f'<a href="/slides/{on.id}" data-plugin="speaker_test_links">Slides {on.id}</a>' in page
    assert f"/slides/{off.id}" not in page


def test_speaker_page_query_count_is_constant(app, client, dbs):
    app.extensions["portal_plugins"].register(LinksPlugin(), name=LinksPlugin.name)
    profile = _yamada(dbs)
    person_id = profile.person_id

    def add_talks(count):
        for n in range(count):
            event = f.event(dbs, starts_at=f.at(2020, 1, 1) + timedelta(days=n))
            f.enable(dbs, event, LinksPlugin.name)
            f.talk(dbs, event, speaker=profile.person)
        dbs.commit()

    add_talks(1)
    with count_queries(app) as one:
        assert client.get(f"/ja/speakers/{person_id}/").status_code == 200
    add_talks(12)
    with count_queries(app) as many:
        assert client.get(f"/ja/speakers/{person_id}/").status_code == 200
    assert one[0] == many[0]


def test_owner_and_organiser_see_edit_links(app, client, dbs):
    profile = _yamada(dbs)
    user = f.user(dbs, email="taro@example.org")
    user.person_id = profile.person_id
    dbs.commit()
    assert "Edit your speaker profile" not in client.get(f"/en/speakers/{profile.person_id}/").text
    login(client, user)
    page = client.get(f"/en/speakers/{profile.person_id}/").text
    with app.test_request_context():
        assert url_for("speakers.own_profile", person_id=profile.person_id, lang_code="en") in page
