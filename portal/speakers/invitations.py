"""Inviting a speaker to fill in their own record: the signed link, the email, accepting it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person, User
from portal.db import utcnow
from portal.i18n import LANGUAGES, format_person_name
from portal.links import external_url
from portal.mail.services import queue_email
from portal.speakers.merge import merge_speakers
from portal.speakers.models import (
    SpeakerInvitation,
)
from portal.speakers.records import SpeakerError, ensure_profile, has_speaker_data

INVITATION_MAX_AGE = timedelta(days=14)
INVITATION_SALT = "portal.speakers.invitation"


class LinkError(SpeakerError):
    pass


class InvitationError(SpeakerError):
    def __init__(self, message, expired: bool = False):
        super().__init__(message)
        self.expired = expired


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITATION_SALT)


def invitation_token(invitation: SpeakerInvitation) -> str:
    return _serializer().dumps({"n": invitation.nonce})


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
    now = utcnow()
    invitation = SpeakerInvitation(
        person_id=person.id,
        email=email,
        language=language,
        nonce=secrets.token_urlsafe(24),
        invited_by_id=getattr(actor, "id", None),
        created_at=now,
        expires_at=now + INVITATION_MAX_AGE,
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
    invalid = InvitationError(
        _l("This link is not valid. Please ask the organisers for a new one.")
    )
    try:
        payload, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise invalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise invalid
    now = now or utcnow()
    if now - signed_at > max_age:
        raise InvitationError(
            _l("This link has expired. Please ask the organisers for a new one."), expired=True
        )
    invitation = session.scalar(
        sa.select(SpeakerInvitation).where(SpeakerInvitation.nonce == payload["n"])
    )
    if invitation is None or invitation.revoked_at is not None:
        raise invalid
    return invitation


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
