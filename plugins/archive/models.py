"""The lecture archive (講演資料アーカイブ): files and video links per talk, and who opened what.

- ``ArchiveItem``: one file (PDF, PowerPoint .pptx, PNG or JPEG; stored under
  ``archive/`` in the file storage with a random name) or one video link of a talk. ``text_key`` is
  the text of the slides (PDF and PPTX), folded for search (see ``plugins.archive.files``).
- ``ArchiveAccessLog``: every request for an item (file or link), allowed or not: who, what,
  when. Rows stay when an item is deleted (the title is kept as it was).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import User
from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Talk
from portal.i18n import Bilingual, BilingualText


class ItemKind(enum.StrEnum):
    file = "file"
    link = "link"


class FileType(enum.StrEnum):
    pdf = "pdf"
    pptx = "pptx"
    png = "png"
    jpeg = "jpeg"


class ArchiveItem(Base):
    __tablename__ = "archive_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    talk_id: Mapped[int] = mapped_column(sa.ForeignKey("talks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ItemKind] = mapped_column(sa.Enum(ItemKind, native_enum=False, length=10))
    title: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    file_type: Mapped[FileType | None] = mapped_column(
        sa.Enum(FileType, native_enum=False, length=10)
    )
    stored_name: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    original_name: Mapped[str] = mapped_column(sa.String(255), default="")
    size: Mapped[int] = mapped_column(default=0)
    url: Mapped[str | None] = mapped_column(sa.String(2000))
    # The slides' text, folded (NFKC, lower case, no white space) for LIKE search.
    text_key: Mapped[str] = mapped_column(sa.Text, default="")
    # Indexed: the personal-data download (and forgetting a person) look items up by uploader.
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    talk: Mapped[Talk] = relationship()
    uploaded_by: Mapped[User | None] = relationship()

    def label(self, lang: str | None = None) -> str:
        return self.title.get(lang) if self.title else self.original_name


class ArchiveAccessLog(Base):
    __tablename__ = "archive_access_log"
    __table_args__ = (sa.Index("ix_archive_access_log_series_at", "series_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("archive_items.id", ondelete="SET NULL"), index=True
    )
    talk_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("talks.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    allowed: Mapped[bool] = mapped_column()
    # Why access was given or refused: member, speaker, organiser, admin, anonymous, refused.
    reason: Mapped[str] = mapped_column(sa.String(20), default="")
    item_title: Mapped[str] = mapped_column(sa.String(300), default="")

    user: Mapped[User | None] = relationship(lazy="joined")
    item: Mapped[ArchiveItem | None] = relationship()
    talk: Mapped[Talk | None] = relationship()
