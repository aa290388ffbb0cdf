"""Fee categories, registrations and per-event registration settings.

A person has at most one registration per event (``UNIQUE(event_id, person_id)``); registering
again after cancelling reopens the same row. Its history is the audit log
(``subject_type="registration"``).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person, User
from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import AttendanceMode, Event
from portal.i18n import Bilingual, BilingualText


class RegistrationState(enum.StrEnum):
    pending_payment = "pending_payment"
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"
    attended = "attended"


class FeeCategory(Base):
    """A fee category (参加区分) of one event: member, non-member, student, invited speaker …"""

    __tablename__ = "fee_categories"
    __table_args__ = (sa.UniqueConstraint("event_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[BilingualText] = mapped_column(Bilingual())
    price_minor: Mapped[int] = mapped_column(default=0)
    early_bird_price_minor: Mapped[int | None] = mapped_column()
    early_bird_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    requires_membership: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)

    event: Mapped[Event] = relationship()

    def price_at(self, when: datetime) -> int:
        """The price in minor units at a moment: the early-bird price until its date."""
        if (
            self.early_bird_price_minor is not None
            and self.early_bird_until is not None
            and when < self.early_bird_until
        ):
            return self.early_bird_price_minor
        return self.price_minor

    def is_early_bird_at(self, when: datetime) -> bool:
        return self.price_at(when) != self.price_minor


class Registration(Base):
    """One person's registration (参加登録) for one event."""

    __tablename__ = "registrations"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "person_id"),
        sa.Index("ix_registrations_event_state_mode", "event_id", "state", "attendance_mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    attendance_mode: Mapped[AttendanceMode] = mapped_column(
        sa.Enum(AttendanceMode, native_enum=False, length=20)
    )
    fee_category_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("fee_categories.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[RegistrationState] = mapped_column(
        sa.Enum(RegistrationState, native_enum=False, length=20)
    )
    # When the registration (last) joined the waiting list: the queue order.
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Answers to the plugins' registration fields, by field name.
    answers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Snapshot of the price lines: [{"code", "label": {"ja", "en"}, "amount_minor", "currency"}].
    price_lines: Mapped[list] = mapped_column(sa.JSON, default=list)
    total_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(sa.String(3))
    privacy_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    event: Mapped[Event] = relationship()
    person: Mapped[Person] = relationship()
    user: Mapped[User | None] = relationship()
    fee_category: Mapped[FeeCategory | None] = relationship()

    @property
    def holds_seat(self) -> bool:
        """Whether the registration counts against its mode's capacity right now."""
        if self.state in (RegistrationState.confirmed, RegistrationState.attended):
            return True
        if self.state == RegistrationState.pending_payment:
            return self.payment_deadline is None or self.payment_deadline > utcnow()
        return False

    @property
    def is_active(self) -> bool:
        return self.state != RegistrationState.cancelled

    @property
    def lines(self) -> list[dict]:
        """The stored price lines, each with its label as BilingualText."""
        return [
            dict(line, label=BilingualText.of(line.get("label"))) for line in self.price_lines or []
        ]

    def __repr__(self) -> str:
        return (
            f"<Registration {self.id} event={self.event_id} person={self.person_id} {self.state}>"
        )


class RegistrationSettings(Base):
    """Per-event registration settings (one row per event; absent means the defaults)."""

    __tablename__ = "registration_settings"

    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    payment_days: Mapped[int] = mapped_column(default=3)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
