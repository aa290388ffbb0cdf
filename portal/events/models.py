"""Series, events, the programme (talks) and per-event plugin settings."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person
from portal.db import Base, UTCDateTime, utcnow
from portal.i18n import Bilingual, BilingualText


class SeriesKind(enum.StrEnum):
    study_group = "study_group"
    workshop = "workshop"


class EventFormat(enum.StrEnum):
    onsite = "onsite"
    online = "online"
    hybrid = "hybrid"


class EventStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"
    cancelled = "cancelled"


class AttendanceMode(enum.StrEnum):
    onsite = "onsite"
    online = "online"


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(60), unique=True)
    kind: Mapped[SeriesKind] = mapped_column(sa.Enum(SeriesKind, native_enum=False, length=20))
    name: Mapped[BilingualText] = mapped_column(Bilingual())
    description: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    default_language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    currency: Mapped[str] = mapped_column(sa.String(3), default="JPY")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Tokyo")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    events: Mapped[list[Event]] = relationship(back_populates="series")

    def t(self, field: str, lang: str | None = None) -> str:
        return getattr(self, field).get(lang, self.default_language)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("series_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id"), index=True)
    number: Mapped[int | None] = mapped_column()
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[BilingualText] = mapped_column(Bilingual())
    description: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(sa.String(64))
    venue: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    format: Mapped[EventFormat] = mapped_column(
        sa.Enum(EventFormat, native_enum=False, length=20), default=EventFormat.onsite
    )
    capacity_onsite: Mapped[int | None] = mapped_column()
    capacity_online: Mapped[int | None] = mapped_column()
    status: Mapped[EventStatus] = mapped_column(
        sa.Enum(EventStatus, native_enum=False, length=20), default=EventStatus.draft, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    series: Mapped[Series] = relationship(back_populates="events", lazy="joined")
    talks: Mapped[list[Talk]] = relationship(
        back_populates="event", order_by="Talk.position", cascade="all, delete-orphan"
    )
    plugin_settings: Mapped[list[EventPlugin]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )

    def t(self, field: str, lang: str | None = None) -> str:
        return getattr(self, field).get(lang, self.series.default_language)

    @property
    def is_public(self) -> bool:
        return self.status != EventStatus.draft

    @property
    def attendance_modes(self) -> list[AttendanceMode]:
        if self.format == EventFormat.hybrid:
            return [AttendanceMode.onsite, AttendanceMode.online]
        return [AttendanceMode(self.format.value)]

    def capacity(self, mode: AttendanceMode | str) -> int | None:
        """Seats for a mode; None means no limit."""
        return self.capacity_onsite if mode == AttendanceMode.onsite else self.capacity_online

    @property
    def is_past(self) -> bool:
        return self.ends_at < utcnow()


class Talk(Base):
    """A speaker's talk at an event: the programme."""

    __tablename__ = "talks"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    speaker_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"), index=True)
    title: Mapped[BilingualText] = mapped_column(Bilingual())
    abstract: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    # The speaker's self-introduction for this occasion (else their profile's one is used).
    self_introduction: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    position: Mapped[int] = mapped_column(default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "oral" or "poster" (an abstract accepted as a poster); posters are marked as such in
    # the programme.
    presentation_type: Mapped[str] = mapped_column(
        sa.String(20), default="oral", server_default="oral"
    )

    event: Mapped[Event] = relationship(back_populates="talks")
    speaker: Mapped[Person | None] = relationship(lazy="joined")

    def t(self, field: str, lang: str | None = None) -> str:
        return getattr(self, field).get(lang, self.language)


class SeriesPlugin(Base):
    """Whether a plugin of series scope (membership, archive, attendance) is on for a whole
    series, with its settings (JSON over declared defaults): on for every event of it."""

    __tablename__ = "series_plugins"
    __table_args__ = (sa.UniqueConstraint("series_id", "plugin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(sa.String(60))
    enabled: Mapped[bool] = mapped_column(default=False)
    settings: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class EventPlugin(Base):
    """Whether a plugin is on for an event, with its settings (JSON over declared defaults)."""

    __tablename__ = "event_plugins"
    __table_args__ = (sa.UniqueConstraint("event_id", "plugin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(sa.String(60))
    enabled: Mapped[bool] = mapped_column(default=False)
    settings: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship(back_populates="plugin_settings")
