"""Tickets (参加証) and check-ins.

A ticket belongs to one registration and carries a random token (never the registration id);
revoking it sets ``revoked_at`` and issues a new one, so a scan of the old token answers
"revoked". A check-in row records who let the person in, and when, at one check-in point
(``event``: the meeting itself; ``reception``: the exchange meeting); ``UNIQUE(registration,
point)`` makes a second scan of the same person at the same point impossible to count twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import User
from portal.db import Base, UTCDateTime, utcnow
from portal.registration.models import Registration


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    registration: Mapped[Registration] = relationship()

    @property
    def is_valid(self) -> bool:
        return self.revoked_at is None


class CheckIn(Base):
    __tablename__ = "checkins"
    __table_args__ = (sa.UniqueConstraint("registration_id", "point"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    point: Mapped[str] = mapped_column(sa.String(20))
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_in_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    registration: Mapped[Registration] = relationship()
    checked_in_by: Mapped[User | None] = relationship()
