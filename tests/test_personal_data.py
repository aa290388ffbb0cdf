"""A person's data across areas: the download includes registrations and speaker records;
deleting the account gives back seats at upcoming events and erases the speaker profile."""

from __future__ import annotations

import sqlalchemy as sa

from portal.events.models import AttendanceMode
from portal.i18n import BilingualText
from portal.registration import services as registration
from portal.registration.models import Registration, RegistrationState
from portal.speakers.models import SpeakerProfile
from tests import factories as f
from tests.test_accounts import db_session, log_in


def _setup(app):
    with db_session(app) as s:
        event = f.event(s, capacity_onsite=1)
        owner = f.user(s, email="leaver@example.org")
        other = f.user(s, email="waiting@example.org")
        mine = registration.register(
            s, event, owner.person, mode=AttendanceMode.onsite, user=owner, privacy_accepted=True
        )
        theirs = registration.register(
            s, event, other.person, mode=AttendanceMode.onsite, user=other, privacy_accepted=True
        )
        f.talk(s, event, owner.person)
        profile = s.scalar(
            sa.select(SpeakerProfile).where(SpeakerProfile.person_id == owner.person_id)
        )
        profile.biography = BilingualText(ja="略歴", en="Biography")
        s.commit()
        assert (mine.state, theirs.state) == (
            RegistrationState.confirmed,
            RegistrationState.waitlisted,
        )
        return event.slug, mine.id, theirs.id, owner.person_id


def test_download_includes_registrations_and_speaker_record(app, client):
    slug, *_ = _setup(app)
    log_in(client, "leaver@example.org")
    data = client.get("/en/account/profile/data.json").json
    assert [(r["event"], r["state"], r["attendance_mode"]) for r in data["registrations"]] == [
        (slug, "confirmed", "onsite")
    ]
    assert data["speaker"]["profile"]["biography"] == {"ja": "略歴", "en": "Biography"}


def test_deleting_the_account_frees_the_seat_for_the_next_person(app, client):
    _, mine_id, theirs_id, person_id = _setup(app)
    log_in(client, "leaver@example.org")
    r = client.post(
        "/en/account/profile/delete", data={"delete-password": f.PASSWORD, "delete-confirm": "y"}
    )
    assert r.status_code == 302
    with db_session(app) as s:
        assert s.get(Registration, mine_id).state == RegistrationState.cancelled
        assert s.get(Registration, theirs_id).state == RegistrationState.confirmed
        profile = s.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person_id))
        assert profile is None or profile.biography == BilingualText()
