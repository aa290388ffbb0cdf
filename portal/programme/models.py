"""Programme items (sessions, breaks, the reception) and the talks placed in sessions.

A talk's times are its own ``Talk.starts_at`` / ``Talk.ends_at``; ``TalkPlacement`` says in which
session it is given (one placement per talk). The study group's meetings use the same model:
one session with its talks, then the exchange meeting as a ``reception`` item.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person
from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Event, Talk
from portal.i18n import Bilingual, BilingualText


class ItemKind(enum.StrEnum):
    session = "session"
    break_ = "break"
    reception = "reception"
    other = "other"


class ProgrammeItem(Base):
    __tablename__ = "programme_items"
    __table_args__ = (sa.Index("ix_programme_items_event_start", "event_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[ItemKind] = mapped_column(
        sa.Enum(
            ItemKind,
            native_enum=False,
            length=20,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    title: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    room: Mapped[str] = mapped_column(sa.String(100), default="")
    chair_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    event: Mapped[Event] = relationship()
    chair: Mapped[Person | None] = relationship(lazy="joined")


class TalkPlacement(Base):
    __tablename__ = "programme_talk_placements"

    id: Mapped[int] = mapped_column(primary_key=True)
    talk_id: Mapped[int] = mapped_column(sa.ForeignKey("talks.id", ondelete="CASCADE"), unique=True)
    item_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programme_items.id", ondelete="CASCADE"), index=True
    )

    talk: Mapped[Talk] = relationship()
    item: Mapped[ProgrammeItem] = relationship()
