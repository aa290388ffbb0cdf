"""Likely duplicates and merging: everything moves to the surviving record, nothing is lost,
and the merge is recorded."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.accounts.models import Person, User
from portal.audit import AuditEntry
from portal.db import Base
from portal.events.models import Talk
from portal.i18n import BilingualText
from portal.speakers import services
from portal.speakers.models import (
    Affiliation,
    SpeakerInvitation,
    SpeakerMerge,
    SpeakerProfile,
)
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_speakers_support import ctx, login, organiser, speaker


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


def _pair(dbs):
    """The same person entered twice: once by the study group, once by the workshop."""
    keep = speaker(
        dbs,
        family_name="山田",
        given_name="太郎",
        family_name_kana="やまだ",
        given_name_kana="たろう",
        romanized_name="Taro Yamada",
        email="taro@example.org",
        country="",
        affiliation="",
        organisation=BilingualText(ja="東京大学"),
        biography=BilingualText(ja="日本語の略歴", en=""),
    )
    other = speaker(
        dbs,
        family_name="",
        given_name="",
        family_name_kana="",
        given_name_kana="",
        romanized_name="YAMADA Taro",
        email="t.yamada@example.edu",
        country="US",
        affiliation="",
        organisation=BilingualText(en="MIT"),
        biography=BilingualText(ja="別の略歴", en="English biography"),
        self_introduction=BilingualText(en="Hello, I am Taro."),
    )
    other.links = [{"label": "Lab", "url": "https://lab.example.org/"}]
    return keep, other


def test_find_duplicates_by_email_romanised_name_and_either_script(app, dbs):
    keep, other = _pair(dbs)
    same_email = speaker(dbs, romanized_name="Someone Else", email="TARO@example.org")
    same_kanji = speaker(dbs, family_name="鈴木", given_name="一郎", romanized_name="Ichiro Suzuki")
    same_kanji2 = speaker(dbs, family_name="鈴木", given_name="一郎", romanized_name="I. Suzuki")
    same_kana = speaker(
        dbs,
        family_name="佐藤",
        given_name="一",
        family_name_kana="サトウ",
        given_name_kana="ハジメ",
        romanized_name="A",
    )
    same_kana2 = speaker(
        dbs,
        family_name="佐藤",
        given_name="肇",
        family_name_kana="さとう",
        given_name_kana="はじめ",
        romanized_name="B",
    )
    speaker(dbs, family_name="無関係", given_name="人", romanized_name="Unrelated Person")
    dbs.commit()
    pairs = {
        (p.first.person_id, p.second.person_id): p.reasons for p in services.find_duplicates(dbs)
    }
    assert pairs == {
        (keep.person_id, other.person_id): ["romanised"],
        (keep.person_id, same_email.person_id): ["email"],
        (same_kanji.person_id, same_kanji2.person_id): ["name"],
        (same_kana.person_id, same_kana2.person_id): ["kana"],
    }


def test_duplicates_page_lists_pairs(app, client, dbs):
    keep, other = _pair(dbs)
    login(client, organiser(dbs))
    dbs.commit()
    page = client.get("/en/organiser/speakers/duplicates")
    assert page.status_code == 200
    assert f"/en/organiser/speakers/merge?a={keep.person_id}&amp;b={other.person_id}" in page.text
    assert "Same romanised name" in page.text


def test_merge_moves_everything_and_is_recorded(app, client, dbs):
    keep, other = _pair(dbs)
    study, workshop = f.series(dbs), f.series(dbs, "workshop")
    kept_talk = f.talk(dbs, f.event(dbs, study), speaker=keep.person)
    moved_talks = [
        f.talk(dbs, f.event(dbs, workshop), speaker=other.person),
        f.talk(dbs, f.event(dbs, workshop), speaker=other.person),
    ]
    with ctx(app):
        invitation, _token = services.invite_speaker(
            dbs, other.person, "t.yamada@example.edu", None
        )
    other_affiliation = dbs.scalar(
        sa.select(Affiliation).where(Affiliation.person_id == other.person_id)
    )
    admin = organiser(dbs)
    login(client, admin)
    dbs.commit()
    keep_id, other_id = keep.person_id, other.person_id

    page = client.get(f"/en/organiser/speakers/merge?a={keep_id}&b={other_id}")
    assert page.status_code == 200
    response = client.post(
        "/en/organiser/speakers/merge", data={"a": keep_id, "b": other_id, "survivor_id": keep_id}
    )
    assert response.status_code == 302
    dbs.commit()

    # Every talk, affiliation and invitation now belongs to the survivor.
    talks = dbs.scalars(sa.select(Talk.id).where(Talk.speaker_id == keep_id)).all()
    assert sorted(talks) == sorted([kept_talk.id, *(t.id for t in moved_talks)])
    assert dbs.scalars(sa.select(Talk).where(Talk.speaker_id == other_id)).all() == []
    affiliations = dbs.scalars(
        sa.select(Affiliation.organisation).where(Affiliation.person_id == keep_id)
    ).all()
    assert sorted(a.ja or a.en for a in affiliations) == ["MIT", "東京大学"]
    assert dbs.get(SpeakerInvitation, invitation.id).person_id == keep_id

    # Fields empty on the survivor were filled; its own values were kept.
    survivor = dbs.get(Person, keep_id)
    profile = services.get_profile(dbs, keep_id)
    assert survivor.email == "taro@example.org"
    assert survivor.country == "US"
    assert profile.biography == BilingualText(ja="日本語の略歴", en="English biography")
    assert profile.self_introduction == BilingualText(en="Hello, I am Taro.")
    assert profile.links == [{"label": "Lab", "url": "https://lab.example.org/"}]

    # The other record is anonymised and marked; its data is kept in the merge record.
    merged = dbs.get(Person, other_id)
    assert (merged.romanized_name, merged.email) == ("", None)
    assert merged.anonymised_at is not None
    assert services.get_profile(dbs, other_id).merged_into_id == keep_id
    record = dbs.scalar(sa.select(SpeakerMerge))
    assert (record.survivor_id, record.merged_id, record.merged_by_id) == (
        keep_id,
        other_id,
        admin.id,
    )
    assert record.snapshot["person"]["romanized_name"] == "YAMADA Taro"
    assert record.snapshot["person"]["email"] == "t.yamada@example.edu"
    assert record.snapshot["profile"]["biography"] == {"ja": "別の略歴", "en": "English biography"}
    assert sorted(record.moved["talks.speaker_id"]) == sorted(t.id for t in moved_talks)
    assert record.moved["speaker_affiliations.person_id"] == [other_affiliation.id]
    assert record.moved["speaker_invitations.person_id"] == [invitation.id]
    assert record.filled == ["country", "biography.en", "self_introduction.en", "links"]
    audit = dbs.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.action.in_(["merged", "merged_into"]))
        .order_by(AuditEntry.id)
    ).all()
    assert [(a.subject_id, a.action, a.actor_id) for a in audit] == [
        (keep_id, "merged", admin.id),
        (other_id, "merged_into", admin.id),
    ]
    assert audit[0].data["moved"] == {
        "speaker_affiliations.person_id": 1,
        "speaker_invitations.person_id": 1,
        "talks.speaker_id": 2,
    }

    # It can be looked up later, and the old page points to the survivor.
    listing = client.get("/en/organiser/speakers/merges/")
    assert listing.status_code == 200
    assert f"/en/organiser/speakers/merges/{record.id}" in listing.text
    detail = client.get(f"/en/organiser/speakers/merges/{record.id}")
    assert "YAMADA Taro" in detail.text and "t.yamada@example.edu" in detail.text
    old_page = client.get(f"/en/speakers/{other_id}/")
    assert old_page.status_code == 301
    assert old_page.headers["Location"].endswith(f"/en/speakers/{keep_id}/")
    assert services.find_duplicates(dbs) == []
    assert services.resolve(dbs, other_id) == keep_id


def test_merge_moves_rows_of_tables_added_later(app, dbs):
    """Any table with a foreign key to people.id (e.g. abstracts' authors) moves too."""
    table = sa.Table(
        "speaker_test_abstract_authors",
        Base.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.ForeignKey("people.id")),
        sa.Column("position", sa.Integer),
    )
    engine = app.extensions["portal_db"]["engine"]
    try:
        table.create(engine)
        keep, other = _pair(dbs)
        dbs.flush()
        dbs.execute(
            table.insert(),
            [
                {"id": 1, "person_id": other.person_id, "position": 1},
                {"id": 2, "person_id": keep.person_id, "position": 2},
            ],
        )
        record = services.merge_speakers(dbs, keep.person, other.person, None)
        dbs.commit()
        rows = dbs.execute(sa.select(table.c.id, table.c.person_id).order_by(table.c.id)).all()
        assert [tuple(r) for r in rows] == [(1, keep.person_id), (2, keep.person_id)]
        assert record.moved["speaker_test_abstract_authors.person_id"] == [1]
    finally:
        dbs.rollback()
        Base.metadata.remove(table)
        table.drop(engine)


def test_references_are_found_generically():
    from portal.models import load_all_models

    metadata = load_all_models()
    expected = {
        (t.name, fk.parent.name)
        for t in metadata.sorted_tables
        for fk in t.foreign_keys
        if fk.column.table.name == "people"
    } - services.MERGE_SKIP
    assert {(t.name, c.name) for t, c in services.people_references()} == expected
    assert ("talks", "speaker_id") in expected and ("users", "person_id") in expected


def test_merge_moves_an_account_but_refuses_two_accounts(app, dbs):
    keep, other = _pair(dbs)
    account = User(person_id=other.person_id, email="other@example.org", password_hash="x")
    dbs.add(account)
    dbs.flush()
    services.merge_speakers(dbs, keep.person, other.person, None)
    dbs.commit()
    assert dbs.get(User, account.id).person_id == keep.person_id

    first, second = speaker(dbs, romanized_name="A A"), speaker(dbs, romanized_name="A A")
    dbs.add_all(
        [
            User(person_id=first.person_id, email="a1@example.org", password_hash="x"),
            User(person_id=second.person_id, email="a2@example.org", password_hash="x"),
        ]
    )
    dbs.commit()
    try:
        services.merge_speakers(dbs, first.person, second.person, None)
    except services.MergeError as exc:
        assert str(exc) == "These records cannot be merged because both have an account."
    else:
        raise AssertionError("merged two accounts")
    dbs.rollback()
    assert dbs.scalar(sa.select(sa.func.count()).select_from(SpeakerMerge)) == 1


def test_merge_refuses_itself_and_merged_records(app, dbs):
    keep, other = _pair(dbs)
    third = speaker(dbs, romanized_name="Third")
    for survivor, merged in ((keep, keep),):
        try:
            services.merge_speakers(dbs, survivor.person, merged.person, None)
        except services.MergeError:
            pass
        else:
            raise AssertionError("merged a record into itself")
    services.merge_speakers(dbs, keep.person, other.person, None)
    dbs.commit()
    try:
        services.merge_speakers(dbs, third.person, other.person, None)
    except services.MergeError as exc:
        assert str(exc) == "One of these records has already been merged."
    else:
        raise AssertionError("merged a merged record")


def test_merge_chain_redirects_to_the_last_survivor(app, client, dbs):
    a, b = _pair(dbs)
    c = speaker(dbs, romanized_name="Taro Yamada")
    services.merge_speakers(dbs, b.person, a.person, None)
    services.merge_speakers(dbs, c.person, b.person, None)
    dbs.commit()
    assert services.resolve(dbs, a.person_id) == c.person_id
    # Profiles merged into b now point at c.
    assert services.get_profile(dbs, a.person_id).merged_into_id == c.person_id
    response = client.get(f"/ja/speakers/{a.person_id}/")
    assert response.status_code == 301
    assert response.headers["Location"].endswith(f"/ja/speakers/{c.person_id}/")


def test_merged_records_leave_the_directory(app, client, dbs):
    keep, other = _pair(dbs)
    services.merge_speakers(dbs, keep.person, other.person, None)
    dbs.commit()
    page = client.get("/ja/speakers/").text
    assert f"/ja/speakers/{keep.person_id}/" in page
    assert f"/ja/speakers/{other.person_id}/" not in page
    assert (
        dbs.scalar(
            sa.select(sa.func.count())
            .select_from(SpeakerProfile)
            .where(SpeakerProfile.merged_into_id.is_(None))
        )
        == 1
    )


def test_forget_speaker_erases_profile_but_keeps_talks(app, dbs):
    from pathlib import Path

    from tests.test_speakers_support import image_bytes

    keep, _other = _pair(dbs)
    talk = f.talk(dbs, f.event(dbs), speaker=keep.person, self_introduction=BilingualText(ja="話"))
    with ctx(app):
        services.update_speaker(dbs, keep.person, {}, organiser(dbs), photo=image_bytes("PNG"))
        services.invite_speaker(dbs, keep.person, "taro@example.org", None)
    dbs.commit()
    photo = Path(app.config["UPLOAD_FOLDER"]) / "speakers" / keep.photo_filename
    data = services.speaker_personal_data(dbs, keep.person)
    assert data["profile"]["biography"] == {"ja": "日本語の略歴", "en": ""}
    assert data["affiliations"][0]["organisation"] == {"ja": "東京大学", "en": ""}
    assert data["talks"] == [
        {"id": talk.id, "event_id": talk.event_id, "self_introduction": {"ja": "話", "en": ""}}
    ]
    with ctx(app):
        services.forget_speaker(dbs, keep.person)
    dbs.commit()
    assert not photo.exists()
    profile = services.get_profile(dbs, keep.person_id)
    assert (profile.biography, profile.links, profile.photo_filename, profile.publish_consent) == (
        BilingualText(),
        [],
        None,
        False,
    )
    assert profile.affiliations == []
    assert dbs.get(Talk, talk.id).speaker_id == keep.person_id
    assert dbs.get(Talk, talk.id).self_introduction == BilingualText()
    assert dbs.scalar(sa.select(SpeakerInvitation.revoked_at)) is not None
    assert services.speaker_personal_data(dbs, keep.person)["affiliations"] == []


# -- both records registered for one event -----------------------------------------------------


def _registered_pair(dbs, first_state="pending_payment", second_state="confirmed"):
    from portal.registration.models import Registration, RegistrationState

    keep, other = _pair(dbs)
    event = f.event(dbs, title=BilingualText(ja="第5回研究会", en="5th Meeting"))
    regs = []
    for profile, state in ((keep, first_state), (other, second_state)):
        reg = Registration(
            event_id=event.id,
            person_id=profile.person_id,
            attendance_mode="onsite",
            state=RegistrationState(state),
            currency="JPY",
            total_minor=3000,
        )
        dbs.add(reg)
        regs.append(reg)
    dbs.flush()
    return keep, other, event, regs


def test_merge_of_two_registrations_keeps_the_confirmed_one_by_default(app, dbs):
    from portal.registration.models import Registration

    keep, other, event, (pending, confirmed) = _registered_pair(dbs)
    with ctx(app):
        record = services.merge_speakers(dbs, keep.person, other.person, None)
    dbs.commit()
    # The confirmed registration (the merged record's) now belongs to the survivor; the
    # survivor's pending one is cancelled and stays with the merged record, history and all.
    assert dbs.get(Registration, confirmed.id).person_id == keep.person_id
    assert dbs.get(Registration, confirmed.id).state.value == "confirmed"
    lost = dbs.get(Registration, pending.id)
    assert (lost.person_id, lost.state.value) == (other.person_id, "cancelled")
    history = dbs.scalars(
        sa.select(AuditEntry.action).where(
            AuditEntry.subject_type == "registration", AuditEntry.subject_id == pending.id
        )
    ).all()
    assert history == ["cancelled_by_merge"]
    assert record.snapshot["registrations"] == [
        {
            "event_id": event.id,
            "kept": confirmed.id,
            "cancelled": pending.id,
            "cancelled_state": "pending_payment",
        }
    ]
    assert dbs.get(Person, other.person_id).anonymised_at is not None


def test_merge_page_lets_the_organiser_choose_the_registration(app, client, dbs):
    from portal.registration.models import Registration

    keep, other, event, (first, second) = _registered_pair(dbs, "confirmed", "cancelled")
    login(client, organiser(dbs))
    dbs.commit()
    keep_id, other_id = keep.person_id, other.person_id
    page = client.get(f"/en/organiser/speakers/merge?a={keep_id}&b={other_id}")
    assert "Both records are registered for 5th Meeting. Which registration is kept?" in page.text
    assert f'name="keep_{event.id}" value="{first.id}" checked' in page.text
    # No choice for the event: the form comes back with the event named.
    bad = client.post(
        "/en/organiser/speakers/merge",
        data={"a": keep_id, "b": other_id, "survivor_id": keep_id, f"keep_{event.id}": "999"},
    )
    assert bad.status_code == 400
    assert "Please choose which registration for 5th Meeting to keep." in bad.text
    # Keeping the (cancelled) second one: the survivor's confirmed one is cancelled instead.
    response = client.post(
        "/en/organiser/speakers/merge",
        data={
            "a": keep_id,
            "b": other_id,
            "survivor_id": keep_id,
            f"keep_{event.id}": str(second.id),
        },
    )
    assert response.status_code == 302
    dbs.commit()
    kept, lost = dbs.get(Registration, second.id), dbs.get(Registration, first.id)
    assert (kept.person_id, kept.state.value) == (keep_id, "cancelled")
    assert (lost.person_id, lost.state.value) == (other_id, "cancelled")
    assert services.get_profile(dbs, other_id).merged_into_id == keep_id
    ja = client.get(f"/ja/organiser/speakers/merges/{dbs.scalar(sa.select(SpeakerMerge.id))}")
    assert ja.status_code == 200
    # The event's organiser still sees both registrations, the cancelled one with its history.
    admin = f.user(dbs, is_admin=True, email="root@example.org")
    dbs.commit()
    login(client, admin)
    listing = client.get(f"/en/organiser/events/{event.slug}/registrations/?state=cancelled")
    assert listing.status_code == 200
    assert f"/registrations/{first.id}/" in listing.text
    detail = client.get(f"/en/organiser/events/{event.slug}/registrations/{first.id}/")
    assert detail.status_code == 200
    assert "Cancelled when two records of the person were merged" in detail.text


# -- after a merge -------------------------------------------------------------------------------


def test_old_invitation_link_does_not_edit_a_survivor_with_an_account(app, client, dbs):
    keep, other = _pair(dbs)
    account = f.user(dbs, email="taro.account@example.org")
    with ctx(app):
        _invitation, token = services.invite_speaker(
            dbs, other.person, "t.yamada@example.edu", organiser(dbs)
        )
    # The survivor is the account's person: the other record (and its invitation) moves there.
    services.merge_speakers(dbs, account.person, other.person, None)
    dbs.commit()
    url = f"/en/speakers/invitation/{token}/"
    page = client.get(url)
    assert page.status_code == 403
    assert "This speaker record now belongs to an account. Please log in to change it." in page.text
    assert "/en/account/login?next=" in page.text
    before = dbs.get(Person, account.person_id).romanized_name
    response = client.post(url, data={"romanized_name": "Evil Name", "family_name": "悪"})
    assert response.status_code == 403
    assert client.post(f"{url}affiliations", data={}).status_code == 403
    dbs.commit()
    assert dbs.get(Person, account.person_id).romanized_name == before
    ja = client.get(f"/ja/speakers/invitation/{token}/")
    assert "アカウント" in ja.text and ja.status_code == 403
    # The account holder, logged in, may still use it.
    login(client, account)
    assert client.get(url).status_code == 200


def test_merged_record_keeps_no_personal_data(app, dbs):
    from pathlib import Path

    from tests.test_speakers_support import image_bytes

    keep, other = _pair(dbs)
    other.title = BilingualText(ja="教授", en="Prof.")
    other.position = BilingualText(en="Professor")
    other.person.sector = None
    admin = organiser(dbs)
    with ctx(app):
        services.update_speaker(dbs, keep.person, {}, admin, image_bytes())
        services.update_speaker(dbs, other.person, {}, admin, image_bytes())
    dbs.commit()
    other_photo = Path(app.config["UPLOAD_FOLDER"]) / "speakers" / other.photo_filename
    assert other_photo.exists()
    with ctx(app):
        record = services.merge_speakers(dbs, keep.person, other.person, None)
    dbs.commit()
    merged = services.get_profile(dbs, other.person_id)
    for name in ("title", "position", "biography", "self_introduction"):
        assert getattr(merged, name) == BilingualText(), name
    assert (merged.links, merged.photo_filename, merged.publish_consent) == ([], None, False)
    assert not other_photo.exists()
    person = dbs.get(Person, other.person_id)
    assert (person.family_name, person.romanized_name, person.email, person.country) == (
        "",
        "",
        None,
        "",
    )
    assert merged.search_key == "" and merged.reading_key == ""
    # Nothing is lost: the merge record has it.
    assert record.snapshot["profile"]["self_introduction"] == {"ja": "", "en": "Hello, I am Taro."}
    assert record.snapshot["profile"]["title"] == {"ja": "教授", "en": "Prof."}


def test_merge_detail_names_fields_in_the_readers_language(app, client, dbs):
    keep, other = _pair(dbs)
    f.talk(dbs, f.event(dbs), speaker=other.person)
    record = services.merge_speakers(dbs, keep.person, other.person, None)
    login(client, organiser(dbs))
    dbs.commit()
    ja = client.get(f"/ja/organiser/speakers/merges/{record.id}").text
    for label in ("略歴（英語）", "自己紹介（英語）", "国・地域", "氏名（ローマ字）", "講演"):
        assert label in ja, label
    assert "<code>romanized_name</code>" not in ja and "biography.en" not in ja
    en = client.get(f"/en/organiser/speakers/merges/{record.id}").text
    assert "Biography (English)" in en and "Name in Latin letters" in en


def test_merge_refusal_names_what_both_have_in_the_readers_language(app, dbs):
    from flask_babel import force_locale

    from plugins.abstracts.models import Abstract, AbstractState, ReviewAssignment

    keep, other = _pair(dbs)
    abstract = Abstract(event_id=f.event(dbs).id, state=AbstractState.submitted)
    dbs.add(abstract)
    dbs.flush()
    dbs.add_all(
        [
            ReviewAssignment(abstract_id=abstract.id, reviewer_id=keep.person_id),
            ReviewAssignment(abstract_id=abstract.id, reviewer_id=other.person_id),
        ]
    )
    dbs.flush()
    with pytest.raises(services.MergeError) as error, ctx(app):
        services.merge_speakers(dbs, keep.person, other.person, None)
    with ctx(app), force_locale("ja"):
        assert str(error.value.message) == (
            "両方に同じ要旨の査読の割り当てがあるため、この 2 つの講演者情報は統合できません。"
        )
    with ctx(app), force_locale("en"):
        assert str(error.value.message) == (
            "These records cannot be merged because both have a review assignment for the "
            "same abstract."
        )
    dbs.rollback()
