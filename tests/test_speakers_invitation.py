"""Inviting a speaker: a signed, expiring link to complete their own record without an
account; access rules for changing a record."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.accounts.models import Person
from portal.db import utcnow
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.mail.services import send_due
from portal.speakers import services
from portal.speakers.models import SpeakerInvitation
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_speakers_support import ctx, login, organiser, speaker


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


OWN = {
    "family_name": "山田",
    "given_name": "太郎",
    "family_name_kana": "やまだ",
    "given_name_kana": "たろう",
    "romanized_name": "Taro Yamada",
    "country": "JP",
    "title_ja": "教授",
    "title_en": "Prof.",
    "self_introduction_ja": "私は長年チタンの研究をしてきました。",
    "self_introduction_en": "I have worked on titanium for many years.",
    "biography_ja": "",
    "biography_en": "",
    "links": "",
    "publish_consent": "y",
}


def _invite(app, dbs, language="ja", **kw):
    profile = speaker(dbs, preferred_language=language, **kw)
    with ctx(app):
        invitation, token = services.invite_speaker(
            dbs, profile.person, profile.person.email, organiser(dbs)
        )
    dbs.commit()
    return profile, invitation, token


def test_invitation_email_in_preferred_language(app, client, dbs, smtp_server):
    profile, invitation, token = _invite(app, dbs, "en", email="speaker@example.org")
    emails = dbs.scalars(sa.select(OutboxEmail)).all()
    assert [(e.to_address, e.language, e.template) for e in emails] == [
        ("speaker@example.org", "en", "speakers/invitation")
    ]
    assert emails[0].subject == "Please complete your speaker profile"
    assert f"http://localhost/en/speakers/invitation/{token}/" in emails[0].body_text
    assert f"http://localhost/en/speakers/invitation/{token}/" in emails[0].body_html
    assert invitation.expires_at - invitation.created_at == timedelta(days=14)
    app.config.update(MAIL_PORT=smtp_server.port)
    with ctx(app):
        assert send_due(dbs) == (1, 0)
    assert [m["To"] for m in smtp_server.messages] == ["speaker@example.org"]
    assert smtp_server.messages[0]["Content-Language"] == "en"


def test_invitation_email_in_japanese(app, dbs):
    _invite(app, dbs, "ja")
    email = dbs.scalar(sa.select(OutboxEmail))
    assert email.language == "ja"
    assert "/ja/speakers/invitation/" in email.body_text


def test_link_works_without_login_and_saves_the_profile(app, client, dbs):
    profile, invitation, token = _invite(app, dbs)
    upcoming = f.talk(dbs, f.event(dbs), speaker=profile.person)
    past = f.talk(
        dbs, f.event(dbs, starts_at=utcnow() - timedelta(days=100)), speaker=profile.person
    )
    dbs.commit()
    url = f"/ja/speakers/invitation/{token}/"
    page = client.get(url)
    assert page.status_code == 200
    assert f'name="talk_{upcoming.id}_ja"' in page.text
    assert f'name="talk_{past.id}_ja"' not in page.text  # only talks still to come
    data = dict(OWN, **{f"talk_{upcoming.id}_ja": "この回は鉱山の話から始めます。"})
    response = client.post(url, data=data)
    assert response.status_code == 302
    dbs.commit()
    person = dbs.get(Person, profile.person_id)
    saved = services.get_profile(dbs, profile.person_id)
    assert (person.family_name, person.romanized_name) == ("山田", "Taro Yamada")
    assert saved.title == BilingualText(ja="教授", en="Prof.")
    assert saved.self_introduction.en == "I have worked on titanium for many years."
    assert saved.publish_consent is True
    assert upcoming.self_introduction == BilingualText(ja="この回は鉱山の話から始めます。")
    assert dbs.get(SpeakerInvitation, invitation.id).used_at is not None
    # Without email or language fields, the speaker cannot change where emails go.
    response = client.post(url, data=dict(data, email="evil@example.org", preferred_language="en"))
    dbs.commit()
    assert person.email != "evil@example.org" and person.preferred_language == "ja"
    assert client.get(f"/ja/speakers/{profile.person_id}/").text.count("鉱山の話") == 1


def test_link_adds_affiliations(app, client, dbs):
    profile, _invitation, token = _invite(app, dbs)
    response = client.post(
        f"/en/speakers/invitation/{token}/affiliations",
        data={"aff-organisation_ja": "架空大学", "aff-organisation_en": "Fictional University"},
    )
    assert response.status_code == 302
    assert services.get_profile(dbs, profile.person_id).current_affiliation.organisation.en == (
        "Fictional University"
    )


def test_invitation_expires(app, dbs):
    _profile, invitation, token = _invite(app, dbs)
    with ctx(app):
        _check_expiry(dbs, invitation, token)


def _check_expiry(dbs, invitation, token):
    assert services.load_invitation(dbs, token).id == invitation.id
    later = utcnow() + timedelta(days=14, minutes=1)
    try:
        services.load_invitation(dbs, token, now=later)
    except services.InvitationError as exc:
        assert exc.expired is True
        assert (
            str(exc)
            == "このリンクは有効期限が切れています。お手数ですが、事務局に新しいリンクをご依頼ください。"
        )
    else:
        raise AssertionError("an expired link was accepted")
    assert (
        services.load_invitation(dbs, token, now=utcnow() + timedelta(days=13)).id == invitation.id
    )
    try:
        services.load_invitation(dbs, token, max_age=timedelta(seconds=-1))
    except services.InvitationError as exc:
        assert exc.expired is True
    else:
        raise AssertionError("max_age was ignored")


class _FifteenDaysAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 15 * 24 * 3600


def test_expired_forged_and_revoked_links_are_refused(app, client, dbs):
    profile, invitation, token = _invite(app, dbs)
    old = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt=services.INVITATION_SALT, signer=_FifteenDaysAgo
    ).dumps({"n": invitation.nonce})
    expired = client.get(f"/en/speakers/invitation/{old}/")
    assert expired.status_code == 410
    assert "This link has expired. Please ask the organisers for a new one." in expired.text
    assert client.post(f"/en/speakers/invitation/{old}/", data=OWN).status_code == 410

    forged = URLSafeTimedSerializer("another-secret", salt=services.INVITATION_SALT).dumps(
        {"n": invitation.nonce}
    )
    assert client.get(f"/en/speakers/invitation/{forged}/").status_code == 404
    assert client.get(f"/en/speakers/invitation/{token[:-2]}xx/").status_code == 404

    dbs.get(SpeakerInvitation, invitation.id).revoked_at = utcnow()
    dbs.commit()
    assert client.get(f"/en/speakers/invitation/{token}/").status_code == 404
    assert client.post(f"/en/speakers/invitation/{token}/", data=OWN).status_code == 404
    dbs.commit()
    assert dbs.get(Person, profile.person_id).romanized_name != "Taro Yamada"


def test_link_record_to_account_without_speaker_data(app, client, dbs):
    profile, invitation, token = _invite(app, dbs)
    talk = f.talk(dbs, f.event(dbs), speaker=profile.person)
    user = f.user(dbs, email="me@example.org", family_name="山田", given_name="太郎")
    dbs.commit()
    response = client.post(f"/ja/speakers/invitation/{token}/link")
    assert response.status_code == 302
    assert "/account/login" in response.headers["Location"]
    login(client, user)
    response = client.post(f"/ja/speakers/invitation/{token}/link")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ja/speakers/{user.person_id}/profile")
    dbs.commit()
    assert talk.speaker_id == user.person_id
    assert services.get_profile(dbs, profile.person_id).merged_into_id == user.person_id
    assert services.get_profile(dbs, user.person_id).publish_consent is True  # carried over
    # The same link now opens the account's record; the speaker can edit it when logged in.
    assert client.get(f"/ja/speakers/invitation/{token}/").status_code == 200
    assert client.get(f"/ja/speakers/{user.person_id}/profile").status_code == 200


def test_link_refused_when_account_already_has_speaker_data(app, client, dbs):
    _profile, _invitation, token = _invite(app, dbs)
    user = f.user(dbs, email="me@example.org")
    f.talk(dbs, f.event(dbs), speaker=user.person)
    dbs.commit()
    login(client, user)
    response = client.post(f"/en/speakers/invitation/{token}/link", follow_redirects=True)
    assert (
        "Your account already has speaker data. Please ask the organisers to merge the two records."
        in response.text
    )
    dbs.commit()
    assert user.person.anonymised_at is None
    assert services.get_profile(dbs, _profile.person_id).merged_into_id is None


def test_only_organisers_and_the_speaker_change_a_record(app, client, dbs):
    profile = speaker(dbs)
    own = f.user(dbs, email="own@example.org")
    own.person_id = profile.person_id
    other_person = speaker(dbs)
    stranger = f.user(dbs, email="stranger@example.org")
    dbs.commit()
    url = f"/en/speakers/{profile.person_id}/profile"
    # Not logged in, or someone else: the page does not exist for them.
    assert client.get(url).status_code == 404
    login(client, stranger)
    assert client.get(url).status_code == 404
    assert client.post(url, data=OWN).status_code == 404
    assert client.get(f"/en/speakers/{other_person.person_id}/profile").status_code == 404
    assert (
        client.post(f"/en/organiser/speakers/{profile.person_id}/edit", data=OWN).status_code == 403
    )
    # The speaker themself.
    login(client, own)
    assert client.get(url).status_code == 200
    assert client.post(url, data=OWN).status_code == 302
    dbs.commit()
    assert dbs.get(Person, profile.person_id).romanized_name == "Taro Yamada"
    assert client.get(f"/en/speakers/{other_person.person_id}/profile").status_code == 404
    # Services refuse too.
    try:
        services.update_speaker(dbs, other_person.person, {"romanized_name": "X"}, stranger)
    except services.SpeakerError:
        pass
    else:
        raise AssertionError("a stranger changed a record")
    dbs.rollback()


def test_invite_form_errors_are_shown(app, client, dbs):
    profile = speaker(dbs)
    login(client, organiser(dbs))
    dbs.commit()
    response = client.post(
        f"/en/organiser/speakers/{profile.person_id}/invite",
        data={"inv-invite_email": "not-an-address", "inv-invite_language": "en"},
    )
    assert response.status_code == 400
    assert 'value="not-an-address"' in response.text
    assert re.search(r"Invalid email address", response.text)
    assert dbs.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
