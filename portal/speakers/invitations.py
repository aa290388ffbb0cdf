"""Inviting a speaker to fill in their own record: the signed link, the email, accepting it."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person, User
from portal.i18n import LANGUAGES, format_person_name
from portal.invitations import InvitationLinkError, InvitationLinks
from portal.links import external_url
from portal.mail.services import queue_email
from portal.speakers.merge import merge_speakers
from portal.speakers.models import (
    SpeakerInvitation,
)
from portal.speakers.records import SpeakerError, ensure_profile, has_speaker_data

INVITATION_MAX_AGE = timedelta(days=14)
INVITATION_SALT = "portal.speakers.invitation"
# Speakers' links carry only the nonce, as the links already emailed do.
LINKS = InvitationLinks(INVITATION_SALT, INVITATION_MAX_AGE, signs_id=False)

# A link that does not open (forged, another kind's, revoked, expired: ``exc.expired``).
InvitationError = InvitationLinkError


class LinkError(SpeakerError):
    pass


def invitation_token(invitation: SpeakerInvitation) -> str:
    return LINKS.token(invitation)


def invitation_url(invitation: SpeakerInvitation, token: str) -> str:
    return external_url("speakers.invitation", token=token, lang_code=invitation.language)


def invite_speaker(
    session: Session, person: Person, email: str, actor, language: str | None = None
) -> tuple[SpeakerInvitation, str]:
    """Email the speaker a signed link (valid 14 days) to complete their own record."""
    email = (email or "").strip()
    if not email:
        raise SpeakerError(_l("Please enter the speaker's email address."))
    profile = ensure_profile(session, person)
    if profile.is_merged:
        raise SpeakerError(_l("This record has been merged into another one."))
    language = language if language in LANGUAGES else person.preferred_language
    invitation = LINKS.new(
        SpeakerInvitation, actor, person_id=person.id, email=email, language=language
    )
    session.add(invitation)
    session.flush()
    token = invitation_token(invitation)
    queue_email(
        session,
        email,
        "speakers/invitation",
        language,
        person=person,
        name=format_person_name(person, language),
        url=invitation_url(invitation, token),
        expires_at=invitation.expires_at,
        inviter=format_person_name(actor.person, language)
        if getattr(actor, "person", None)
        else "",
    )
    audit.record(
        session, actor, "speaker", person.id, "invited", invitation_id=invitation.id, email=email
    )
    return invitation, token


def load_invitation(
    session: Session,
    token: str,
    now: datetime | None = None,
    max_age: timedelta = INVITATION_MAX_AGE,
) -> SpeakerInvitation:
    """The invitation a link stands for; InvitationError if forged, revoked or expired."""
    return LINKS.load(session, SpeakerInvitation, token, now=now, max_age=max_age)


def link_speaker_to_account(session: Session, invitation: SpeakerInvitation, user: User) -> Person:
    """Join the invited speaker record to the logged-in person's account.

    Allowed when the account's person has no speaker data of their own (otherwise the
    organisers merge the two records). The speaker record is merged into the account's
    person, so the account keeps its person and gains the talks and profile.
    """
    speaker = invitation.person
    if user.person_id == speaker.id:
        return speaker
    if speaker.user is not None:
        raise LinkError(_l("This speaker record already belongs to another account."))
    if has_speaker_data(session, user.person):
        raise LinkError(
            _l(
                "Your account already has speaker data. Please ask the organisers to merge the two records."
            )
        )
    merge_speakers(session, user.person, speaker, user, reason="linked_account")
    return user.person
