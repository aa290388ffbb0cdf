"""People searches fold kana, width and romaji alike: 「タカハシ」, 「たかはし」, 「ﾀｶﾊｼ」,
"takahashi" and "ＴＡＫＡＨＡＳＨＩ" all find 高橋 (たかはし), in every search of people."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from portal.accounts.models import Person
from portal.accounts.search import person_matches, romaji, search_key
from portal.db import db
from portal.registration import services
from portal.registration.models import FeeCategory
from tests import factories as f

QUERIES = ["タカハシ", "たかはし", "ﾀｶﾊｼ", "takahashi", "ＴＡＫＡＨＡＳＨＩ", "Takahashi", "高橋"]


@contextmanager
def _context(app):
    with app.app_context():
        yield db.session
        db.session.commit()


def _log_in(client, user_id: str) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


@pytest.fixture
def world(app):
    with _context(app) as s:
        series = f.series(s)
        event = f.event(s, series)
        free = FeeCategory(event_id=event.id, code="free", name={"en": "Free"}, price_minor=0)
        s.add(free)
        s.flush()
        takahashi = f.person(
            s,
            family_name="高橋",
            given_name="一郎",
            family_name_kana="たかはし",
            given_name_kana="いちろう",
            romanized_name="",  # romaji only from the reading
            email="ichiro@example.org",
        )
        sato = f.person(
            s,
            family_name="佐藤",
            given_name="優子",
            family_name_kana="サトウ",
            given_name_kana="ユウコ",
            romanized_name="Yuko Sato",
            email="yuko@example.org",
        )
        for person in (takahashi, sato):
            services.register(
                s, event, person, mode="onsite", fee_category=free.id, privacy_accepted=True
            )
        organiser = f.user(s, roles=(("organiser", series),))
        return dict(slug=event.slug, organiser=organiser.get_id(), takahashi=takahashi.id)


def test_romaji_of_kana():
    assert romaji("たかはし") == "takahashi"
    assert romaji("ｼﾝｲﾁ") == "shinichi"
    assert romaji("まっちゃ") == "matcha"
    assert romaji("じゅんいちろう") == "junichirou"


def test_search_key_is_set_and_kept_fresh(app, world):
    with _context(app) as s:
        person = s.get(Person, world["takahashi"])
        assert person.search_key == "高橋一郎|たかはしいちろう|takahashiichirou|ichiro@example.org"
        person.family_name_kana = "タカハシ"  # same reading, other script: same key
        person.given_name_kana = "ジロウ"
        s.flush()
        assert "じろう" in person.search_key and "takahashijirou" in person.search_key
        assert person.search_key == search_key(person)


@pytest.mark.parametrize("query", QUERIES)
def test_the_condition_finds_takahashi_whatever_the_script(app, world, query):
    with _context(app) as s:
        found = s.scalars(sa.select(Person.family_name).where(person_matches(query))).all()
        assert found == ["高橋"]


@pytest.mark.parametrize("query", ["sato yuko", "さとう ゆうこ", "ｻﾄｳ", "yuuko", "satou"])
def test_long_vowels_and_several_words(app, world, query):
    with _context(app) as s:
        found = s.scalars(sa.select(Person.family_name).where(person_matches(query))).all()
        assert found == ["佐藤"]


@pytest.mark.parametrize("query", QUERIES[:5])
def test_check_in_search(app, client, world, query):
    _log_in(client, world["organiser"])
    for lang in ("ja", "en"):
        page = client.get(
            f"/{lang}/organiser/events/{world['slug']}/registrations/check-in",
            query_string={"q": query},
        )
        assert page.status_code == 200
        assert "高橋" in page.text and "佐藤" not in page.text


@pytest.mark.parametrize("query", QUERIES[:5])
def test_registration_list_search(app, client, world, query):
    _log_in(client, world["organiser"])
    page = client.get(
        f"/en/organiser/events/{world['slug']}/registrations/", query_string={"q": query}
    )
    assert page.status_code == 200
    assert "高橋" in page.text and "佐藤" not in page.text


@pytest.mark.parametrize("query", ["ﾀｶﾊｼ", "takahashi"])
def test_find_a_person_to_register_or_as_speaker(app, client, world, query):
    from portal.organiser.views import find_people

    _log_in(client, world["organiser"])
    page = client.get(
        f"/ja/organiser/events/{world['slug']}/registrations/add", query_string={"q": query}
    )
    assert page.status_code == 200
    assert "高橋" in page.text and "佐藤" not in page.text
    with app.test_request_context():
        assert [p.family_name for p in find_people(query)] == ["高橋"]


@pytest.mark.postgres_only
def test_trigram_index_on_postgresql(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    with _context(app) as s:
        definition = s.scalar(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_people_search_key'")
        )
    assert "USING gin" in definition and "gin_trgm_ops" in definition
