"""A speaker's personal data: what the data download shows, what erasure removes.

``speaker_personal_data(session, person)`` and ``forget_speaker(session, person)``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person
from portal.db import utcnow
from portal.events.models import Talk
from portal.i18n import BilingualText
from portal.speakers import search
from portal.speakers.models import (
    Affiliation,
    SpeakerInvitation,
    SpeakerProfile,
)
from portal.speakers.records import PHOTO_FIELDS, PROFILE_TEXT_FIELDS, photos_after_commit

# -- personal data ----------------------------------------------------------------------------


def speaker_personal_data(session: Session, person: Person) -> dict:
    """What the speaker records hold about a person (for their data download)."""
    profile = session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    affiliations = session.scalars(
        sa.select(Affiliation).where(Affiliation.person_id == person.id).order_by(Affiliation.id)
    )
    talks = session.scalars(sa.select(Talk).where(Talk.speaker_id == person.id).order_by(Talk.id))
    data: dict = {
        "affiliations": [
            {
                "organisation": a.organisation.as_dict(),
                "position": a.position.as_dict(),
                "from": a.started_on.isoformat() if a.started_on else None,
                "to": a.ended_on.isoformat() if a.ended_on else None,
            }
            for a in affiliations
        ],
        "talks": [
            {"id": t.id, "event_id": t.event_id, "self_introduction": t.self_introduction.as_dict()}
            for t in talks
        ],
    }
    if profile is not None:
        data["profile"] = {
            **{name: getattr(profile, name).as_dict() for name in PROFILE_TEXT_FIELDS},
            "links": list(profile.links or []),
            "photo": bool(profile.photo_filename),
            "publish_consent": profile.publish_consent,
        }
    return data


def forget_speaker(session: Session, person: Person) -> None:
    """Erase the speaker data of a person who deleted their account.

    Talks stay in the programme (the accounts area blanks the name); the profile's texts,
    links and photo, the affiliation history, talk-specific self-introductions and open
    invitations go.
    """
    profile = session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    if profile is not None:
        if profile.photo_filename:
            photos_after_commit(session, remove=profile.photo_filename)
        for name in PROFILE_TEXT_FIELDS:
            setattr(profile, name, BilingualText())
        for name in PHOTO_FIELDS:
            setattr(profile, name, None)
        profile.links = []
        profile.publish_consent = False
        profile.consent_changed_at = utcnow()
    session.execute(sa.delete(Affiliation).where(Affiliation.person_id == person.id))
    for talk in session.scalars(sa.select(Talk).where(Talk.speaker_id == person.id)):
        talk.self_introduction = BilingualText()
    session.execute(
        sa.update(SpeakerInvitation)
        .where(SpeakerInvitation.person_id == person.id, SpeakerInvitation.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.flush()
    search.refresh(session, [person.id])
    audit.record(session, None, "speaker", person.id, "forgotten")
