"""The speaker directory: search in any script and by affiliation, only speakers, paginated,
a constant number of queries."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.events.models import Talk
from portal.i18n import BilingualText
from portal.speakers import search
from portal.speakers.models import SpeakerProfile
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_speakers_support import count_queries, login, organiser, speaker


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


def found(response, lang="ja") -> list[int]:
    """Speaker ids linked from a directory page, in order."""
    ids = re.findall(rf'href="/{lang}/speakers/(\d+)/"', response.text)
    return [int(i) for i in dict.fromkeys(ids)]


def _two_speakers(dbs):
    yamada = speaker(
        dbs,
        family_name="山田",
        given_name="太郎",
        family_name_kana="やまだ",
        given_name_kana="たろう",
        romanized_name="Taro Yamada",
        affiliation="",
        organisation=BilingualText(ja="東京大学", en="The University of Tokyo"),
    )
    suzuki = speaker(
        dbs,
        consent=False,
        family_name="鈴木",
        given_name="花子",
        family_name_kana="スズキ",  # stored in katakana: still found by hiragana
        given_name_kana="ハナコ",
        romanized_name="Hanako SUZUKI",
        affiliation="",
        organisation=BilingualText(ja="架空金属株式会社", en="Kakuu Metals"),
    )
    # Someone who is not a speaker (no talk, no profile) never appears.
    f.person(dbs, family_name="山田", given_name="次郎", romanized_name="Jiro Yamada")
    dbs.commit()
    return yamada.person_id, suzuki.person_id


def test_fold_normalises_scripts_case_and_width():
    assert search.fold("ヤマダ") == "やまだ"
    assert search.fold("ﾔﾏﾀﾞ") == "やまだ"
    assert search.fold("ＹＡＭＡＤＡ") == "yamada"
    assert search.fold("Ōno Jūrō") == "ono juro"
    assert search.fold("ヴァイオリン") == "ゔぁいおりん"
    assert search.compact("山田　太郎") == "山田太郎"
    assert search.roman_key("YAMADA, Taro") == search.roman_key("Taro Yamada") == "taro yamada"


def test_search_by_kanji_kana_katakana_romaji_and_affiliation(app, client, dbs):
    yamada, suzuki = _two_speakers(dbs)
    cases = {
        "山田": [yamada],
        "山田太郎": [yamada],
        "山田 太郎": [yamada],
        "やまだ": [yamada],
        "ヤマダ": [yamada],
        "ﾔﾏﾀﾞ ﾀﾛｳ": [yamada],
        "YAMADA": [yamada],
        "taro yamada": [yamada],
        "yamadataro": [yamada],
        "すずき": [suzuki],
        "スズキ ハナコ": [suzuki],
        "hanako suzuki": [suzuki],
        "鈴木": [suzuki],
        "東京大学": [yamada],
        "university of TOKYO": [yamada],
        "nobody": [],
        "%": [],
        "_": [],
    }
    for query, expected in cases.items():
        response = client.get("/ja/speakers/", query_string={"q": query})
        assert response.status_code == 200, query
        assert found(response) == expected, query


def test_public_search_ignores_affiliation_of_unpublished_profiles(app, client, dbs):
    _yamada, suzuki = _two_speakers(dbs)
    assert found(client.get("/ja/speakers/?q=架空金属")) == []
    assert "架空金属" not in client.get("/ja/speakers/").text
    # Organisers find everyone by affiliation.
    login(client, organiser(dbs))
    dbs.commit()
    response = client.get("/ja/organiser/speakers/?q=架空金属")
    assert response.status_code == 200
    assert f"/ja/organiser/speakers/{suzuki}/edit" in response.text


def test_directory_lists_only_speakers_sorted_by_reading(app, client, dbs):
    yamada, suzuki = _two_speakers(dbs)
    # A person who gets a talk becomes a speaker (the profile is made when the talk is saved).
    event = f.event(dbs)
    guest = f.person(
        dbs,
        family_name="青木",
        given_name="一",
        family_name_kana="あおき",
        given_name_kana="はじめ",
        romanized_name="Hajime Aoki",
    )
    f.talk(dbs, event, speaker=guest)
    dbs.commit()
    assert (
        dbs.scalar(
            sa.select(sa.func.count())
            .select_from(SpeakerProfile)
            .where(SpeakerProfile.person_id == guest.id)
        )
        == 1
    )
    # Japanese: gojūon order of the readings (あおき, すずき, やまだ).
    assert found(client.get("/ja/speakers/")) == [guest.id, suzuki, yamada]
    # English: by romanised name.
    assert found(client.get("/en/speakers/"), "en") == [guest.id, suzuki, yamada]


def test_search_key_follows_name_changes_made_elsewhere(app, client, dbs):
    yamada, _ = _two_speakers(dbs)
    from portal.accounts.models import Person

    person = dbs.get(Person, yamada)
    person.family_name = "山本"  # e.g. on the accounts profile page
    person.family_name_kana = "やまもと"
    dbs.commit()
    assert found(client.get("/ja/speakers/?q=山本")) == [yamada]
    assert found(client.get("/ja/speakers/?q=ヤマモト")) == [yamada]
    assert found(client.get("/ja/speakers/?q=山田")) == []


def test_directory_is_paginated(app, client, dbs):
    for n in range(25):
        speaker(dbs, family_name="試験", given_name=f"{n:02d}", romanized_name=f"Test {n:02d}")
    dbs.commit()
    first = client.get("/ja/speakers/")
    second = client.get("/ja/speakers/?page=2")
    assert len(found(first)) == 20
    assert len(found(second)) == 5
    assert 'rel="next"' in first.text
    assert set(found(first)).isdisjoint(found(second))


def test_directory_query_count_is_constant(app, client, dbs):
    def add(count, start):
        event = f.event(dbs)
        for n in range(start, start + count):
            profile = speaker(
                dbs,
                family_name="講演",
                given_name=f"{n:03d}",
                romanized_name=f"Speaker {n:03d}",
                organisation=BilingualText(ja=f"組織{n}", en=f"Org {n}"),
            )
            f.talk(dbs, event, speaker=profile.person)
        dbs.commit()

    add(10, 0)
    with count_queries(app) as small:
        assert client.get("/ja/speakers/").status_code == 200
        assert client.get("/ja/speakers/?q=講演").status_code == 200
    add(200, 10)
    with count_queries(app) as large:
        assert client.get("/ja/speakers/").status_code == 200
        assert client.get("/ja/speakers/?q=講演").status_code == 200
    assert small[0] == large[0]
    assert small[0] <= 8


def test_reindex_command_gives_old_speakers_a_profile(app, runner, dbs):
    event = f.event(dbs)
    person = f.person(
        dbs,
        family_name="古川",
        given_name="誠",
        family_name_kana="ふるかわ",
        given_name_kana="まこと",
        romanized_name="Makoto Furukawa",
    )
    dbs.commit()
    # A talk written without the ORM (e.g. imported data) has no profile yet.
    dbs.execute(
        sa.insert(Talk.__table__).values(
            event_id=event.id,
            speaker_id=person.id,
            title={"ja": "古い講演", "en": "Old talk"},
            abstract={"ja": "", "en": ""},
            self_introduction={"ja": "", "en": ""},
            language="ja",
            position=1,
        )
    )
    dbs.commit()
    assert (
        dbs.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id)) is None
    )
    result = runner.invoke(args=["speakers", "reindex"])
    assert result.exit_code == 0, result.output
    assert result.output == "1 speaker records indexed.\n"
    dbs.commit()
    profile = dbs.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    assert profile.search_key == "古川誠|ふるかわまこと|furukawamakoto|makotofurukawa|架空金属"
    assert profile.public_search_key == "古川誠|ふるかわまこと|furukawamakoto|makotofurukawa"
