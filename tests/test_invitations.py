"""The shared invitation links (portal/invitations.py), as speakers and membership use them:
one kind's token never opens the other's invitation; forged, expired and used links are refused
with one translated error; links already emailed keep working."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask_babel import force_locale
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from plugins.membership import services as membership
from plugins.membership.models import MemberInvitation
from portal.db import db, utcnow
from portal.i18n import BilingualText
from portal.invitations import InvitationLinkError, InvitationLinks, LinkPayload
from portal.speakers import invitations as speakers
from portal.speakers.models import SpeakerInvitation
from tests import factories as f
from tests.test_speakers_support import organiser, speaker


@pytest.fixture
def both(app):
    """A speaker invitation and a member invitation, with their tokens (ids, not rows)."""
    with app.app_context():
        s = db.session
        study = f.series(s, slug="study")
        f.enable_for_series(s, study, "membership")
        company = membership.create_company(
            s,
            study,
            None,
            domains=["kakuu-metal.co.jp"],
            name=BilingualText(ja="架空金属株式会社", en="Kakuu Metals Co., Ltd."),
            contact_name="佐藤 花子",
            contact_email="hanako.sato@kakuu-metal.co.jp",
            billing_address="東京都千代田区丸の内1-1-1",
            language="ja",
        )
        profile = speaker(s)
        with app.test_request_context("/ja/", base_url=app.config["BASE_URL"]):
            spoken, speaker_token = speakers.invite_speaker(
                s, profile.person, profile.person.email, organiser(s)
            )
            member = membership.invite_member(s, company, "someone@example.org", None)
            member_token = membership.invitation_token(member)
        s.commit()
        yield {
            "speaker": spoken.id,
            "speaker_token": speaker_token,
            "member": member.id,
            "member_token": member_token,
        }


def _reason(call) -> str:
    with pytest.raises(InvitationLinkError) as caught:
        call()
    return caught.value.reason


def test_each_kind_opens_its_own_invitation(app, both):
    with app.app_context():
        s = db.session
        assert speakers.load_invitation(s, both["speaker_token"]).id == both["speaker"]
        assert membership.read_invitation(s, both["member_token"]).id == both["member"]


def test_a_token_of_one_kind_does_not_open_the_other(app, client, both):
    with app.app_context():
        s = db.session
        assert _reason(lambda: speakers.load_invitation(s, both["member_token"])) == "invalid"
        with pytest.raises(membership.MembershipError) as caught:
            membership.read_invitation(s, both["speaker_token"])
        assert caught.value.code == "invalid"
        # Even with the same id and nonce, the salt tells the kinds apart.
        member = s.get(MemberInvitation, both["member"])
        forged = URLSafeTimedSerializer(
            app.config["SECRET_KEY"], salt=speakers.INVITATION_SALT
        ).dumps({"i": member.id, "n": member.nonce})
        assert _reason(lambda: speakers.load_invitation(s, forged)) == "invalid"
    assert client.get(f"/en/speakers/invitation/{both['member_token']}/").status_code == 404
    response = client.get(f"/en/membership/invitations/{both['speaker_token']}")
    assert response.status_code == 400
    assert "This invitation link is not valid." in response.text


def test_payloads_are_those_of_the_links_already_emailed(app, both):
    """Speakers' links carry the nonce, membership's the id and the nonce, as before."""
    with app.app_context():
        s = db.session
        spoken = s.get(SpeakerInvitation, both["speaker"])
        member = s.get(MemberInvitation, both["member"])
        key = app.config["SECRET_KEY"]
        assert URLSafeTimedSerializer(key, salt="portal.speakers.invitation").loads(
            both["speaker_token"]
        ) == {"n": spoken.nonce}
        assert URLSafeTimedSerializer(key, salt="portal.membership.invitation").loads(
            both["member_token"]
        ) == {"i": member.id, "n": member.nonce}
        # A link signed the way the old code signed it opens the invitation.
        old_member = URLSafeTimedSerializer(key, salt="portal.membership.invitation").dumps(
            {"i": member.id, "n": member.nonce}
        )
        assert membership.read_invitation(s, old_member).id == member.id
        old_speaker = URLSafeTimedSerializer(key, salt="portal.speakers.invitation").dumps(
            {"n": spoken.nonce}
        )
        assert speakers.load_invitation(s, old_speaker).id == spoken.id
        assert speakers.LINKS.read(old_speaker) == LinkPayload(None, spoken.nonce)
        assert membership.LINKS.read(old_member) == LinkPayload(member.id, member.nonce)


def test_bad_signatures_and_payloads_are_invalid(app, both):
    with app.app_context():
        s = db.session
        member = s.get(MemberInvitation, both["member"])
        links = membership.LINKS

        def signed(payload, key=app.config["SECRET_KEY"]):
            return URLSafeTimedSerializer(key, salt=links.salt).dumps(payload)

        cases = {
            "another secret": signed({"i": member.id, "n": member.nonce}, key="another-secret"),
            "cut short": both["member_token"][:-3] + "abc",
            "not a token": "hello",
            "a list": signed([member.id, member.nonce]),
            "no nonce": signed({"i": member.id}),
            "an id as text": signed({"i": str(member.id), "n": member.nonce}),
            "an id as true": signed({"i": True, "n": member.nonce}),
            "another nonce": signed({"i": member.id, "n": "x" + member.nonce}),
            "an unknown id": signed({"i": member.id + 1000, "n": member.nonce}),
            "an unknown nonce": signed({"n": "nobody"}),
        }
        for name, token in cases.items():
            reason = _reason(lambda token=token: links.load(s, MemberInvitation, token))
            assert reason == "invalid", name


class _FifteenDaysAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 15 * 24 * 3600


def test_expired_links_are_refused(app, both):
    with app.app_context():
        s = db.session
        member = s.get(MemberInvitation, both["member"])
        links = membership.LINKS
        # Signed longer ago than the kind's max age.
        old = URLSafeTimedSerializer(
            app.config["SECRET_KEY"], salt=links.salt, signer=_FifteenDaysAgo
        ).dumps({"i": member.id, "n": member.nonce})
        assert _reason(lambda: links.load(s, MemberInvitation, old)) == "expired"
        # The clock moves on past max_age; one minute before, the link still opens.
        later = utcnow() + timedelta(days=14, minutes=1)
        token = both["member_token"]
        assert _reason(lambda: links.read(token, now=later)) == "expired"
        sooner = utcnow() + timedelta(days=13, hours=23)
        assert links.load(s, MemberInvitation, token, now=sooner).id == member.id
        # The row's expiry is kept too.
        member.expires_at = utcnow() - timedelta(minutes=1)
        s.flush()
        assert _reason(lambda: links.load(s, MemberInvitation, token)) == "expired"


def test_used_and_revoked_invitations_are_closed(app, both):
    with app.app_context():
        s = db.session
        member = s.get(MemberInvitation, both["member"])
        member.accepted_at = utcnow()
        spoken = s.get(SpeakerInvitation, both["speaker"])
        spoken.used_at = utcnow()  # a speaker's link works again after use …
        s.flush()
        used = _reason(lambda: membership.LINKS.load(s, MemberInvitation, both["member_token"]))
        assert used == "used"
        assert speakers.load_invitation(s, both["speaker_token"]).id == spoken.id
        spoken.revoked_at = utcnow()  # … until it is revoked
        s.flush()
        assert _reason(lambda: speakers.load_invitation(s, both["speaker_token"])) == "invalid"
        with pytest.raises(membership.MembershipError) as caught:
            membership.read_invitation(s, both["member_token"])
        assert caught.value.code == "used"


def test_the_error_is_translated(app):
    for language, expected in (
        ("en", "This link has expired. Please ask the organisers for a new one."),
        (
            "ja",
            "このリンクは有効期限が切れています。お手数ですが、事務局に新しいリンクをご依頼ください。",
        ),
    ):
        with app.test_request_context("/"), force_locale(language):
            error = InvitationLinkError("expired")
            assert (error.reason, error.expired, str(error.message)) == ("expired", True, expected)
    with app.test_request_context("/"), force_locale("ja"):
        assert str(InvitationLinkError("used").message) == "この招待は既に受諾されています。"
        assert InvitationLinkError().reason == "invalid"
    with pytest.raises(ValueError):
        InvitationLinkError("lost")


def test_new_invitations_get_a_fresh_nonce_and_the_kind_s_expiry(app):
    links = InvitationLinks("portal.tests.invitation", timedelta(hours=2), signs_id=False)
    now = utcnow()
    first = links.new(SpeakerInvitation, None, now=now, person_id=1, email="a@example.org")
    second = links.new(SpeakerInvitation, None, now=now, person_id=1, email="a@example.org")
    assert first.nonce != second.nonce and len(first.nonce) >= 32
    assert (first.created_at, first.expires_at) == (now, now + timedelta(hours=2))
    assert first.invited_by_id is None
