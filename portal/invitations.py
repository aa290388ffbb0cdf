"""Invitations: an emailed, signed, expiring link that stands for one invitation row.

Two areas invite people by email: speakers (``SpeakerInvitation``, complete your own record)
and the membership plugin (``MemberInvitation``, join a member company). Both use this module:

- ``InvitationMixin``: the columns every invitation row has (email, language, nonce,
  invited_by, created_at, expires_at). A model says when its link no longer opens in
  ``closed_reason()`` (revoked, already accepted).
- ``InvitationLinks(salt, max_age)``: one per kind of invitation. ``new(model, actor, ...)``
  makes the row (a fresh nonce, ``expires_at`` after ``max_age``), ``token(invitation)``
  signs it with ``SECRET_KEY`` and the kind's salt, ``read(token)`` reads a token back into
  ``LinkPayload(id, nonce)`` and ``load(session, model, token)`` finds the row it opens.
- ``InvitationLinkError``: the one refusal of a link that does not open, with a translated
  message; ``reason`` is "invalid" (forged, cut short, another kind's, revoked), "expired"
  or "used".

The payload is ``{"i": id, "n": nonce}``. Speakers' links carry only ``{"n": nonce}``
(``signs_id=False``), as the links already emailed do; the reader takes both. The salt is
per kind, so one kind's token never opens another kind's invitation.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.errors import UserError

if TYPE_CHECKING:
    from portal.accounts.models import User

REASONS = ("invalid", "expired", "used")


class InvitationLinkError(UserError):
    """An invitation link that does not open; ``reason`` is one of ``REASONS``."""

    MESSAGES = {
        "invalid": _l("This link is not valid. Please ask the organisers for a new one."),
        "expired": _l("This link has expired. Please ask the organisers for a new one."),
        "used": _l("This invitation has already been accepted."),
    }

    def __init__(self, reason: str = "invalid"):
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.reason = reason
        super().__init__(self.MESSAGES[reason])

    @property
    def expired(self) -> bool:
        return self.reason == "expired"


class InvitationMixin:
    """The columns of an invitation row; the model adds what it invites to."""

    email: Mapped[str] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @declared_attr
    def invited_by(cls) -> Mapped[User | None]:
        return relationship("User")

    def closed_reason(self) -> str | None:
        """Why the link no longer opens ("invalid" or "used"), or None while it is open."""
        return None


class LinkPayload(NamedTuple):
    """What a token stands for: the invitation's id (None in nonce-only links) and nonce."""

    id: int | None
    nonce: str


Invitation = TypeVar("Invitation", bound=InvitationMixin)


@dataclass(frozen=True)
class InvitationLinks:
    """The signed links of one kind of invitation."""

    salt: str
    max_age: timedelta
    signs_id: bool = True

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=self.salt)

    def new(
        self, model: type[Invitation], actor, now: datetime | None = None, **fields
    ) -> Invitation:
        """A new invitation row (not yet added): a fresh nonce, valid for ``max_age``."""
        now = now or utcnow()
        return model(
            nonce=secrets.token_urlsafe(24),
            invited_by_id=getattr(actor, "id", None),
            created_at=now,
            expires_at=now + self.max_age,
            **fields,
        )

    def token(self, invitation: InvitationMixin) -> str:
        payload = {"n": invitation.nonce}
        if self.signs_id:
            payload = {"i": invitation.id, **payload}
        return self._serializer().dumps(payload)

    def read(
        self, token: str, now: datetime | None = None, max_age: timedelta | None = None
    ) -> LinkPayload:
        """The (id, nonce) a token of this kind stands for; InvitationLinkError "invalid"
        (forged, cut short, another kind's) or "expired" (signed longer than max_age ago)."""
        try:
            payload, signed_at = self._serializer().loads(token, return_timestamp=True)
        except BadSignature as exc:
            raise InvitationLinkError("invalid") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
            raise InvitationLinkError("invalid")
        invitation_id = payload.get("i")
        if invitation_id is not None and (
            not isinstance(invitation_id, int) or isinstance(invitation_id, bool)
        ):
            raise InvitationLinkError("invalid")
        now = now or utcnow()
        if now - signed_at > (self.max_age if max_age is None else max_age):
            raise InvitationLinkError("expired")
        return LinkPayload(invitation_id, payload["n"])

    def load(
        self,
        session: Session,
        model: type[Invitation],
        token: str,
        now: datetime | None = None,
        max_age: timedelta | None = None,
    ) -> Invitation:
        """The invitation a link opens; InvitationLinkError if forged, another kind's,
        unknown, closed (revoked, already accepted) or expired."""
        now = now or utcnow()
        found = self.read(token, now=now, max_age=max_age)
        if found.id is not None:
            invitation = session.get(model, found.id)
        else:
            invitation = session.scalar(sa.select(model).where(model.nonce == found.nonce))
        if invitation is None or not hmac.compare_digest(
            invitation.nonce.encode(), found.nonce.encode()
        ):
            raise InvitationLinkError("invalid")
        reason = invitation.closed_reason()
        if reason is not None:
            raise InvitationLinkError(reason)
        if invitation.expires_at < now:
            raise InvitationLinkError("expired")
        return invitation
