"""Webinar: reminders sent (one per registration) and online attendance from the report."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import AttendanceMode
from portal.registration.models import Registration


class WebinarReminder(Base):
    """The reminder email of the day before, queued once per registration."""

    __tablename__ = "webinar_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), unique=True
    )
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    attendance_mode: Mapped[AttendanceMode] = mapped_column(
        sa.Enum(AttendanceMode, native_enum=False, length=20)
    )
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebinarAttendance(Base):
    """Minutes a registration attended online, from the webinar service's attendance report."""

    __tablename__ = "webinar_attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), unique=True
    )
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    minutes: Mapped[int] = mapped_column(default=0)
    sessions: Mapped[int] = mapped_column(default=1)  # times the person joined
    # From the report's join and leave times (first join, last leave), where it has them.
    first_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    registration: Mapped[Registration] = relationship()
