"""One person typed in different scripts: kanji with its kana reading, a name typed in kana,
romanised names in Hepburn variants — found as duplicates, warned about, and searchable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.speakers import search, services
from portal.speakers.models import SpeakerProfile
from tests import test_speakers_support as support
from tests.test_speakers_organiser import FORM
from tests.test_speakers_search import found
from tests.test_speakers_support import login, organiser, speaker


@pytest.fixture
def dbs(app):
    yield from support.open_session(app)


def _ken(dbs, **kw):
    """佐藤 健 with the kana reading, no romanised name."""
    defaults = dict(
        family_name="佐藤",
        given_name="健",
        family_name_kana="サトウ",
        given_name_kana="ケン",
        romanized_name="",
    )
    return speaker(dbs, **{**defaults, **kw})


@pytest.mark.parametrize(
    "typed, expected",
    [
        ({"family_name": "さとう", "given_name": "けん"}, "ken sato"),
        ({"family_name": "ｻﾄｳ ｹﾝ"}, "ken sato"),
        (
            {"family_name": "佐藤", "family_name_kana": "さとう", "given_name_kana": "けん"},
            "ken sato",
        ),
        ({"romanized_name": "SATŌ Ken"}, "ken sato"),
        ({"romanized_name": "Ken Sato"}, "ken sato"),
        ({"romanized_name": "Satou, Ken"}, "ken sato"),
        ({"romanized_name": "Satoh Ken"}, "ken sato"),
        ({"romanized_name": "Shin'ichi Homma"}, "honma shinichi"),
        ({"family_name_kana": "ほんま", "given_name_kana": "しんいち"}, "honma shinichi"),
        ({"family_name": "佐藤", "given_name": "健"}, ""),
    ],
)
def test_reading_key_folds_scripts_and_hepburn_variants(typed, expected):
    from types import SimpleNamespace

    fields = dict.fromkeys(
        ("family_name", "given_name", "family_name_kana", "given_name_kana", "romanized_name"), ""
    )
    assert search.reading_key(SimpleNamespace(**{**fields, **typed})) == expected


def test_duplicates_are_found_across_scripts(app, dbs):
    ken = _ken(dbs)
    in_kana = speaker(dbs, family_name="さとう", given_name="けん", romanized_name="")
    satoh = speaker(dbs, family_name="", given_name="", romanized_name="SATOH Ken")
    other = speaker(dbs, family_name="佐藤", given_name="健二", romanized_name="Kenji Sato")
    dbs.commit()
    pairs = {
        (p.first.person_id, p.second.person_id): p.reasons for p in services.find_duplicates(dbs)
    }
    assert pairs == {
        (ken.person_id, in_kana.person_id): ["reading"],
        (ken.person_id, satoh.person_id): ["reading"],
        (in_kana.person_id, satoh.person_id): ["reading"],
    }
    assert other.person_id not in {i for pair in pairs for i in pair}


def test_a_reading_written_as_one_word_meets_the_same_reading_in_two(app, client, dbs):
    ken = _ken(dbs, family_name_kana="サトウケン", given_name_kana="")
    romanised = speaker(dbs, family_name="", given_name="", romanized_name="Ken Satoh")
    other = speaker(dbs, family_name="", given_name="", romanized_name="Kensuke Sato")
    dbs.commit()
    pairs = {
        (p.first.person_id, p.second.person_id): p.reasons for p in services.find_duplicates(dbs)
    }
    assert pairs == {(ken.person_id, romanised.person_id): ["reading"]}
    login(client, organiser(dbs))
    dbs.commit()
    typed = dict(
        FORM,
        family_name="さとうけん",
        given_name="",
        family_name_kana="",
        given_name_kana="",
        romanized_name="",
        email="new@example.org",
    )
    response = client.post("/en/organiser/speakers/new", data=typed)
    assert response.status_code == 400
    assert f"/en/organiser/speakers/{romanised.person_id}/edit" in response.text
    assert f"/en/organiser/speakers/{ken.person_id}/edit" in response.text
    assert f"/en/organiser/speakers/{other.person_id}/edit" not in response.text


def test_duplicates_page_shows_the_cross_script_pair(app, client, dbs):
    ken = _ken(dbs)
    in_kana = speaker(dbs, family_name="さとう", given_name="けん", romanized_name="")
    login(client, organiser(dbs))
    dbs.commit()
    for lang, reason in (("en", "Same reading in another script"), ("ja", "別の表記で同じ読み")):
        page = client.get(f"/{lang}/organiser/speakers/duplicates")
        assert page.status_code == 200
        merge = f"/{lang}/organiser/speakers/merge?a={ken.person_id}&amp;b={in_kana.person_id}"
        assert merge in page.text
        assert reason in page.text


def test_creating_a_name_typed_in_kana_warns_of_the_kanji_record(app, client, dbs):
    ken = _ken(dbs, email="ken@example.org")
    login(client, organiser(dbs))
    dbs.commit()
    typed = dict(
        FORM,
        family_name="さとう",
        given_name="けん",
        family_name_kana="",
        given_name_kana="",
        romanized_name="",
        email="other@example.org",
    )
    response = client.post("/en/organiser/speakers/new", data=typed)
    assert response.status_code == 400
    assert "Similar speaker records exist." in response.text
    assert f"/en/organiser/speakers/{ken.person_id}/edit" in response.text
    assert dbs.scalar(sa.select(sa.func.count()).select_from(SpeakerProfile)) == 1
    romanised = dict(typed, family_name="", given_name="", romanized_name="Satō Ken")
    response = client.post("/en/organiser/speakers/new", data=romanised)
    assert response.status_code == 400
    assert f"/en/organiser/speakers/{ken.person_id}/edit" in response.text


def test_edit_page_shows_likely_duplicates(app, client, dbs):
    ken = _ken(dbs)
    satou = speaker(dbs, family_name="", given_name="", romanized_name="Ken Satou")
    unrelated = speaker(dbs, romanized_name="Hanako Suzuki")
    login(client, organiser(dbs))
    dbs.commit()
    page = client.get(f"/en/organiser/speakers/{ken.person_id}/edit")
    assert "Likely duplicates" in page.text
    assert f"merge?a={ken.person_id}&amp;b={satou.person_id}" in page.text
    page = client.get(f"/ja/organiser/speakers/{unrelated.person_id}/edit")
    assert "<h2>重複の可能性</h2>" not in page.text and "merge?a=" not in page.text


def test_directory_search_matches_romaji_of_the_kana_reading(app, client, dbs):
    ken = _ken(dbs)
    in_kana = speaker(dbs, family_name="たかはし", given_name="ゆうこ", romanized_name="")
    dbs.commit()
    for query, expected in (
        ("satou", [ken.person_id]),
        ("sato ken", [ken.person_id]),
        ("takahashi yuko", [in_kana.person_id]),
        ("yuuko", [in_kana.person_id]),
        ("satoh", [ken.person_id]),
    ):
        assert found(client.get("/ja/speakers/", query_string={"q": query})) == expected, query


def test_reindex_command_recomputes_reading_keys(app, runner, dbs):
    ken = _ken(dbs)
    dbs.commit()
    dbs.execute(
        sa.update(SpeakerProfile)
        .where(SpeakerProfile.person_id == ken.person_id)
        .values(reading_key="", search_key="")
    )
    dbs.commit()
    result = runner.invoke(args=["speakers", "reindex"])
    assert result.exit_code == 0, result.output
    profile = dbs.get(SpeakerProfile, ken.person_id)
    assert profile.reading_key == "ken sato"
    assert "satou" in profile.search_key


def test_directory_search_folds_hepburn_variants_of_the_query(app, client, dbs):
    satoh = speaker(dbs, family_name="", given_name="", romanized_name="Ken Satoh")
    ohno = speaker(dbs, family_name="大野", given_name="", family_name_kana="おおの")
    dbs.commit()
    for query, expected in (
        ("satou", [satoh.person_id]),
        ("Satō ken", [satoh.person_id]),
        ("SATO", [satoh.person_id]),
        ("ohno", [ohno.person_id]),
        ("ono", [ohno.person_id]),
    ):
        assert found(client.get("/en/speakers/", query_string={"q": query}), "en") == expected, (
            query
        )
