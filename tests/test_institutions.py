"""Institutions: one record whatever language it is typed in; affiliations point to it; review
conflicts compare institutions and are re-checked when an affiliation changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import g

from plugins.abstracts import services as abstracts
from plugins.abstracts.states import AbstractError
from portal.accounts.models import Person
from portal.audit import AuditEntry
from portal.i18n import BilingualText
from portal.speakers import institutions
from portal.speakers.models import Affiliation, Institution
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_abstracts import login, make_call, submitted

TOHOKU = BilingualText(ja="東北大学", en="Tohoku University")


@pytest.fixture
def rq(app, session):
    """A request context (for links in emails) over the test's session."""
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        yield session


def _tohoku(session, aliases=("Tohoku Univ.",), ror="https://ror.org/01dq60k83"):
    return institutions.create_institution(session, TOHOKU, list(aliases), ror, None)


def test_typed_affiliations_point_to_the_institution(app, session):
    before = f.person(session, affiliation="ＴＯＨＯＫＵ　ＵＮＩＶＥＲＳＩＴＹ")
    elsewhere = f.person(session, affiliation="Kyoto University")
    session.commit()
    assert before.institution_id is None
    tohoku = _tohoku(session)
    session.commit()
    assert tohoku.ror_id == "01dq60k83"
    assert sorted((n.text, n.alias) for n in tohoku.names) == [
        ("Tohoku Univ.", True),
        ("Tohoku University", False),
        ("東北大学", False),
    ]
    # Existing people are linked when the institution is created; new ones as they are typed.
    assert before.institution_id == tohoku.id and elsewhere.institution_id is None
    later = f.person(session, affiliation="東北大学")
    session.add(Affiliation(person_id=elsewhere.id, organisation=BilingualText(en="tohoku univ")))
    session.commit()
    assert later.institution_id == tohoku.id
    entry = session.scalar(sa.select(Affiliation).where(Affiliation.person_id == elsewhere.id))
    assert entry.institution_id == tohoku.id
    # The typed text is kept; a change of text follows to the institution it names (or none).
    later.affiliation = "Kyoto University"
    session.commit()
    assert (later.affiliation, later.institution_id) == ("Kyoto University", None)


def test_ror_identifier_and_name_are_checked(app, session):
    with pytest.raises(institutions.InstitutionError) as error:
        institutions.create_institution(session, TOHOKU, [], "not-a-ror", None)
    assert error.value.field == "ror_id"
    with pytest.raises(institutions.InstitutionError):
        institutions.create_institution(session, BilingualText(), [], None, None)
    _tohoku(session)
    with pytest.raises(institutions.InstitutionError) as error:
        institutions.create_institution(session, BilingualText(en="Other"), [], "01dq60k83", None)
    assert str(error.value.message) == "この ROR 識別子は別の機関に登録されています。"


def test_reviewer_conflict_compares_institutions_across_languages(rq):
    session = rq
    call = make_call(session)
    mit = call.reviewers[0]
    kyoto_reviewer = call.reviewers[1]
    kyoto_reviewer.person.affiliation = "東北大学"  # typed in Japanese
    session.commit()
    abstract = submitted(session, call)  # the author typed "Tohoku University"
    # Two spellings, no institution yet: not recognised as colleagues.
    assert (
        abstracts.conflict(
            kyoto_reviewer.person, abstract, abstracts.current_affiliations(session, [])
        )
        is None
    )
    _tohoku(session)
    session.commit()
    with pytest.raises(AbstractError) as error:
        abstracts.assign_reviewer(session, abstract, kyoto_reviewer.person, call.organiser)
    assert "same affiliation as an author" in str(error.value.message)
    abstracts.assign_reviewer(session, abstract, mit.person, call.organiser)
    session.commit()
    result = abstracts.auto_assign(session, call.event, call.organiser, per_abstract=3)
    session.commit()
    reviewers = {a.reviewer_id for a in abstract.assignments}
    assert kyoto_reviewer.person_id not in reviewers
    assert result.assigned == 1  # NIMS; reviewer 3 typed "Tohoku University" too


@pytest.fixture
def dbs(app):
    """A session outside the app context, so that test-client requests have their own."""
    yield from support.open_session(app)


def test_changing_an_affiliation_flags_new_conflicts_to_organisers(app, dbs, client):
    session = dbs
    with support.ctx(app):
        call = make_call(session)
        _tohoku(session)
        mit = call.reviewers[0]
        abstract = submitted(session, call)
        assignment = abstracts.assign_reviewer(session, abstract, mit.person, call.organiser)
        session.commit()
        assert assignment.conflict is None
        # The reviewer moves to 東北大学 (typed in Japanese, on their profile).
        mit.person.affiliation = "東北大学"
        session.commit()
        session.refresh(assignment)
        assert assignment.conflict == "affiliation"
        assert assignment.conflict_found_at is not None
        found = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "reviewer_conflict_found")
        ).all()
        assert [(e.subject_id, e.data["reviewer_id"]) for e in found] == [
            (abstract.id, mit.person_id)
        ]
        slug = call.event.slug
        organiser = call.organiser
    login(client, organiser)
    page = client.get(f"/en/events/{slug}/abstracts/manage/")
    assert page.status_code == 200, page.headers.get("Location")
    assert "Conflicts of interest found after assignment" in page.text
    assert "Reviewer 1" in page.text
    ja = client.get(f"/ja/events/{slug}/abstracts/manage/")
    assert "割り当て後に見つかった利益相反" in ja.text
    detail = client.get(f"/en/events/{slug}/abstracts/manage/{abstract.id}")
    assert 'data-conflict="affiliation"' in detail.text
    dashboard = client.get(f"/ja/organiser/events/{slug}/")
    assert "割り当て後に利益相反が見つかった査読の割り当てが1件あります。" in dashboard.text
    # Moving away again clears the flag.
    mit.person.affiliation = "MIT"
    session.commit()
    session.refresh(assignment)
    assert assignment.conflict is None


def test_merging_institutions_moves_people_and_rechecks_reviews(rq):
    session = rq
    call = make_call(session)
    english = institutions.create_institution(
        session, BilingualText(en="Tohoku University"), [], None, None
    )
    japanese = institutions.create_institution(
        session, BilingualText(ja="東北大学"), ["東北大"], "01dq60k83", None
    )
    mit = call.reviewers[0]
    mit.person.affiliation = "東北大"
    session.commit()
    abstract = submitted(session, call)
    assignment = abstracts.assign_reviewer(session, abstract, mit.person, call.organiser)
    session.commit()
    assert mit.person.institution_id == japanese.id
    assert call.submitter.person.institution_id == english.id
    institutions.merge_institutions(session, english, japanese, None)
    session.commit()
    assert (english.name.ja, english.name.en, english.ror_id) == (
        "東北大学",
        "Tohoku University",
        "01dq60k83",
    )
    assert sorted(english.aliases) == ["東北大"]
    assert japanese.merged_into_id == english.id
    assert session.get(Person, mit.person_id).institution_id == english.id
    session.refresh(assignment)
    assert assignment.conflict == "affiliation"
    with pytest.raises(institutions.InstitutionError):
        institutions.merge_institutions(session, english, japanese, None)


def test_institution_pages(app, client, dbs):
    session = dbs
    organiser = f.user(session, roles=(("organiser", None),))
    person = f.person(session, affiliation="東北大学")
    session.commit()
    login(client, organiser)
    page = client.post(
        "/en/organiser/institutions/new",
        data={"name_ja": "東北大学", "name_en": "", "aliases": "", "ror_id": "nonsense"},
    )
    assert page.status_code == 400
    assert "Please enter a ROR identifier such as https://ror.org/01dq60k83." in page.text
    assert 'value="東北大学"' in page.text
    response = client.post(
        "/en/organiser/institutions/new",
        data={
            "name_ja": "東北大学",
            "name_en": "Tohoku University",
            "aliases": "Tohoku Univ.\nTohoku Daigaku",
            "ror_id": "https://ror.org/01dq60k83",
        },
    )
    assert response.status_code == 302
    session.commit()
    tohoku = session.scalar(sa.select(Institution))
    assert session.get(Person, person.id).institution_id == tohoku.id
    listing = client.get("/ja/organiser/institutions/", query_string={"q": "tohoku daigaku"})
    assert listing.status_code == 200
    assert f"/ja/organiser/institutions/{tohoku.id}/edit" in listing.text
    assert "機関" in listing.text
    assert client.get("/ja/organiser/institutions/?q=kyoto").text.count("/edit") == 0
    edit = client.get(f"/en/organiser/institutions/{tohoku.id}/edit")
    assert "1 people have this affiliation." in edit.text
    other = institutions.create_institution(session, BilingualText(en="Tohoku U"), [], None, None)
    session.commit()
    merge_url = f"/en/organiser/institutions/merge?a={tohoku.id}&b={other.id}"
    assert client.get(merge_url).status_code == 200
    response = client.post(
        "/en/organiser/institutions/merge",
        data={"a": tohoku.id, "b": other.id, "survivor_id": tohoku.id},
    )
    assert response.status_code == 302
    session.commit()
    assert session.get(Institution, other.id).merged_into_id == tohoku.id
    assert client.get("/en/organiser/institutions/999/edit").status_code == 404
    assert client.get("/en/organiser/institutions/merge?a=x&b=1").status_code == 404
    # A participant may not.
    login(client, f.user(session, email="p@example.org"))
    session.commit()
    assert client.get("/en/organiser/institutions/").status_code in (403, 404)


def test_hook_affiliation_changed_hears_every_change_of_affiliation(app, session):
    from portal.hookspecs import hookimpl

    heard = []

    class Listener:
        @hookimpl
        def affiliation_changed(self, session, person_ids):
            heard.append(list(person_ids))

    person = f.person(session, affiliation="Kyoto University")
    other = f.person(session, affiliation="")
    session.commit()
    manager = app.extensions["portal_plugins"]
    listener = Listener()
    manager.register(listener, name="test.affiliation_listener")
    try:
        person.affiliation = "東北大学"
        session.commit()
        session.add(Affiliation(person_id=other.id, organisation=BilingualText(en="NIMS")))
        session.commit()
        person.family_name = "別名"  # not an affiliation: nothing heard
        session.commit()
    finally:
        manager.unregister(name="test.affiliation_listener")
    assert heard == [[person.id], [other.id]]


def test_speaker_edit_page_shows_the_institution_of_each_affiliation(app, client, dbs):
    from tests.test_speakers_support import organiser, speaker

    tohoku = _tohoku(dbs)
    profile = speaker(dbs, organisation=BilingualText(en="Tohoku Univ."))
    other = speaker(dbs, organisation=BilingualText(en="Nowhere Institute"))
    login(client, organiser(dbs))
    dbs.commit()
    page = client.get(f"/ja/organiser/speakers/{profile.person_id}/edit")
    assert f'機関： <a href="/ja/organiser/institutions/{tohoku.id}/edit">東北大学</a>' in page.text
    assert "機関：" not in client.get(f"/ja/organiser/speakers/{other.person_id}/edit").text
    # Public pages do not show it.
    assert "/organiser/institutions/" not in client.get(f"/ja/speakers/{profile.person_id}/").text


def test_speaker_merge_fills_the_institution_and_names_it(app, client, dbs):
    from portal.speakers import services as speaker_services
    from tests.test_speakers_support import organiser, speaker

    tohoku = _tohoku(dbs)
    keep = speaker(dbs, affiliation="")
    other = speaker(dbs, affiliation="東北大学")
    dbs.flush()
    assert other.person.institution_id == tohoku.id
    record = speaker_services.merge_speakers(dbs, keep.person, other.person, None)
    login(client, organiser(dbs))
    dbs.commit()
    survivor = dbs.get(Person, keep.person_id)
    assert (survivor.affiliation, survivor.institution_id) == ("東北大学", tohoku.id)
    assert dbs.get(Person, other.person_id).institution_id is None
    page = client.get(f"/en/organiser/speakers/merges/{record.id}")
    assert '<th scope="row">Institution</th><td>Tohoku University</td>' in page.text
