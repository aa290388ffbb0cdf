"""Attendance figures per meeting, as the organiser reports them."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Event


class AttendanceSource(enum.StrEnum):
    import_ = "import"  # read from the organiser's table (``portal attendance import``)
    portal = "portal"  # saved from the portal's registrations and check-ins


class MeetingAttendance(Base):
    """One meeting's figures: people on the registration list, participants and their sectors.

    Figures are kept exactly as reported, even when the sectors do not add up to the
    participants. ``online_participants`` and ``onsite_participants`` are None where the
    split is not known.
    """

    __tablename__ = "meeting_attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), unique=True
    )
    # 登録人数: registrations for the meeting (None where only the mailing list is known).
    registered: Mapped[int | None] = mapped_column()
    # People on the mailing list at the time, as the history before the portal counts them.
    mailing_list: Mapped[int | None] = mapped_column()
    participants: Mapped[int] = mapped_column(default=0)  # 参加者数
    company: Mapped[int] = mapped_column(default=0)  # 企業関係者
    university: Mapped[int] = mapped_column(default=0)  # 大学関係者
    government_other: Mapped[int] = mapped_column(default=0)  # 官庁他
    online_participants: Mapped[int | None] = mapped_column()  # webinar, where known
    onsite_participants: Mapped[int | None] = mapped_column()  # in the hall, where known
    cancelled: Mapped[bool] = mapped_column(default=False)  # 中止
    note: Mapped[str] = mapped_column(sa.Text, default="")
    source: Mapped[AttendanceSource] = mapped_column(
        sa.Enum(
            AttendanceSource,
            native_enum=False,
            length=10,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AttendanceSource.import_,
    )
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()

    @property
    def breakdown_total(self) -> int:
        return self.company + self.university + self.government_other

    def __repr__(self) -> str:
        return f"<MeetingAttendance event={self.event_id} participants={self.participants}>"
