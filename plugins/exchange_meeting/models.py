"""The exchange meeting's sign-ups: one row per registration (place, waiting list, cancelled)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.registration.models import Registration


class SignupState(enum.StrEnum):
    confirmed = "confirmed"  # has a place
    waitlisted = "waitlisted"  # on the exchange meeting's own waiting list
    cancelled = "cancelled"  # left, or the registration no longer holds a seat


class ExchangeMeetingSignup(Base):
    """A registration's place at the exchange meeting (意見交換会) of its event."""

    __tablename__ = "exchange_meeting_signups"
    __table_args__ = (sa.Index("ix_exchange_meeting_signups_event_state", "event_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), unique=True
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    state: Mapped[SignupState] = mapped_column(sa.Enum(SignupState, native_enum=False, length=20))
    # When the sign-up (last) joined the waiting list: the queue order.
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    registration: Mapped[Registration] = relationship()

    def __repr__(self) -> str:
        return f"<ExchangeMeetingSignup {self.id} registration={self.registration_id} {self.state}>"
