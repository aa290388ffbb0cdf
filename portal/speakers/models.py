"""Speaker records: what we keep about a speaker beside their Person row.

A speaker is a ``portal.accounts.models.Person`` (with or without an account). Speaker-only
data lives here, keyed by ``person_id``:

- ``SpeakerProfile`` (one per speaker): honorific title, position, biography and
  self-introduction (both bilingual), links, photo, consent to publish, search keys, and
  ``merged_into_id`` once the record has been merged into another one.
- ``Affiliation``: affiliation history (organisation, position, from–to); the current one is
  shown by default.
- ``SpeakerInvitation``: an emailed link that lets a speaker complete their own record.
- ``SpeakerMerge``: one row per merge, with what moved and a snapshot of the merged record.
- ``Institution`` (universities, companies, institutes): names in both languages, aliases
  (``InstitutionName``), an optional ROR identifier; ``people.institution_id`` and
  ``speaker_affiliations.institution_id`` point to them (see ``portal.speakers.institutions``).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person, User
from portal.db import Base, UTCDateTime, utcnow
from portal.i18n import Bilingual, BilingualText
from portal.invitations import InvitationMixin
from portal.localtime import office_today

# An index entry (sort key + search key) stays under PostgreSQL's b-tree limit of about 2,700
# bytes even in 4-byte characters. The keys are computed by portal.speakers.search.
SEARCH_KEY_LENGTH = 500
SORT_KEY_LENGTH = 100


class SpeakerProfile(Base):
    __tablename__ = "speaker_profiles"
    __table_args__ = (
        # Covering indexes for the directory: filter, search, sort and page without reading
        # the rows (each entry stays well under PostgreSQL's b-tree limit).
        sa.Index(
            "ix_speaker_profiles_directory_ja",
            "merged_into_id",
            "sort_kana",
            "person_id",
            "public_search_key",
        ),
        sa.Index(
            "ix_speaker_profiles_directory_en",
            "merged_into_id",
            "sort_roman",
            "person_id",
            "public_search_key",
        ),
        sa.Index("ix_speaker_profiles_organiser_search", "merged_into_id", "search_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), unique=True
    )
    title: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    position: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    biography: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    self_introduction: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    # [{"label": "...", "url": "https://..."}]
    links: Mapped[list] = mapped_column(sa.JSON, default=list)

    photo_filename: Mapped[str | None] = mapped_column(sa.String(80))
    photo_width: Mapped[int | None] = mapped_column()
    photo_height: Mapped[int | None] = mapped_column()
    photo_size: Mapped[int | None] = mapped_column()
    photo_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    publish_consent: Mapped[bool] = mapped_column(default=False)
    consent_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Kept current by portal.speakers.search (see there). Lists read the indexes below
    # (merged_into_id first: lists show unmerged records), never the long texts.
    search_key: Mapped[str] = mapped_column(sa.String(SEARCH_KEY_LENGTH), default="")
    public_search_key: Mapped[str] = mapped_column(sa.String(SEARCH_KEY_LENGTH), default="")
    sort_kana: Mapped[str] = mapped_column(sa.String(SORT_KEY_LENGTH), default="")
    sort_roman: Mapped[str] = mapped_column(sa.String(SORT_KEY_LENGTH), default="")
    name_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    kana_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    roman_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    email_key: Mapped[str] = mapped_column(sa.String(254), default="", index=True)
    # The name as it sounds (folded romaji, words sorted) from any script: search.reading_key.
    reading_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)

    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"))
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship(foreign_keys=[person_id], lazy="joined")
    affiliations: Mapped[list[Affiliation]] = relationship(
        primaryjoin="foreign(Affiliation.person_id) == SpeakerProfile.person_id",
        viewonly=True,
        order_by="Affiliation.id",
    )

    @property
    def is_merged(self) -> bool:
        return self.merged_into_id is not None

    @property
    def current_affiliation(self) -> Affiliation | None:
        return current_affiliation(self.affiliations)


class Affiliation(Base):
    """One entry of a speaker's affiliation history (from–to; open-ended means current)."""

    __tablename__ = "speaker_affiliations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    organisation: Mapped[BilingualText] = mapped_column(Bilingual())
    # The institution the organisation names (matched by folded name or alias; may be None).
    institution_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    started_on: Mapped[date | None] = mapped_column(sa.Date())
    ended_on: Mapped[date | None] = mapped_column(sa.Date())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_current(self) -> bool:
        return self.ended_on is None or self.ended_on >= office_today()


def current_affiliation(affiliations) -> Affiliation | None:
    """The open-ended (or not yet ended) entry that started last; None if there is none."""
    current = [a for a in affiliations if a.is_current]
    if not current:
        return None
    return max(current, key=lambda a: (a.started_on or date.min, a.id or 0))


class SpeakerInvitation(InvitationMixin, Base):
    """An emailed, signed, expiring link for a speaker to complete their own record; it
    works again after use (``used_at``: the first save) until it expires or is revoked."""

    __tablename__ = "speaker_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship(lazy="joined")

    def closed_reason(self) -> str | None:
        return "invalid" if self.revoked_at is not None else None


class SpeakerMerge(Base):
    """A merge of ``merged_id`` into ``survivor_id``: who, when, and what moved."""

    __tablename__ = "speaker_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    merged_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    merged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(sa.String(40), default="duplicate")
    # The merged record as it was: person fields and profile fields.
    snapshot: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # {"talks.speaker_id": [1, 2], ...}: rows that now point at the survivor.
    moved: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Person and profile fields that were empty on the survivor and were filled from the other.
    filled: Mapped[list] = mapped_column(sa.JSON, default=list)

    survivor: Mapped[Person] = relationship(foreign_keys=[survivor_id], lazy="joined")
    merged: Mapped[Person] = relationship(foreign_keys=[merged_id])
    merged_by: Mapped[User | None] = relationship()


class Institution(Base):
    """A university, company or institute: one record whatever language it is typed in."""

    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    # https://ror.org/0xxxxxxxx, stored as the 9-character identifier.
    ror_id: Mapped[str | None] = mapped_column(sa.String(9), unique=True)
    merged_into_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    names: Mapped[list[InstitutionName]] = relationship(
        back_populates="institution",
        cascade="all, delete-orphan",
        order_by="InstitutionName.id",
    )

    @property
    def is_merged(self) -> bool:
        return self.merged_into_id is not None

    @property
    def aliases(self) -> list[str]:
        return [n.text for n in self.names if n.alias]


class InstitutionName(Base):
    """A name an institution is known by (its Japanese and English names, and aliases), with
    its folded key for matching typed affiliations."""

    __tablename__ = "institution_names"
    __table_args__ = (sa.UniqueConstraint("institution_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(sa.String(200))
    key: Mapped[str] = mapped_column(sa.String(200), index=True)
    alias: Mapped[bool] = mapped_column(default=True)

    institution: Mapped[Institution] = relationship(back_populates="names")
