"""Abstracts, their authors, review assignments, reviews and the event's email texts.

An abstract's history (submitted, withdrawn, reopened, reviewers, decisions) is kept in the
audit log (``portal.audit``, subject ``abstract``). Every reference to a person is a foreign
key to ``people.id``, so merging two speaker records moves these rows too.
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


class AbstractState(enum.StrEnum):
    draft = "draft"
    submitted = "submitted"
    revision_requested = "revision_requested"
    accepted_oral = "accepted_oral"
    accepted_poster = "accepted_poster"
    rejected = "rejected"
    withdrawn = "withdrawn"

    @property
    def is_accepted(self) -> bool:
        return self in (AbstractState.accepted_oral, AbstractState.accepted_poster)

    @property
    def is_decided(self) -> bool:
        return self.is_accepted or self == AbstractState.rejected


class Abstract(Base):
    __tablename__ = "abstracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    # The person who submitted it (None once they deleted their account).
    submitter_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    # Markdown source; sanitised when shown.
    body: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    topic: Mapped[str] = mapped_column(sa.String(100), default="")
    presentation_type: Mapped[str] = mapped_column(sa.String(20), default="oral")
    state: Mapped[AbstractState] = mapped_column(
        sa.Enum(AbstractState, native_enum=False, length=30),
        default=AbstractState.draft,
        index=True,
    )
    # An organiser let the submitter change it after the deadline (until a decision).
    reopened: Mapped[bool] = mapped_column(default=False)
    # The organiser's note sent with the last decision or revision request.
    decision_note: Mapped[str] = mapped_column(sa.Text, default="")

    pdf_name: Mapped[str | None] = mapped_column(sa.String(80))  # stored under a random name
    pdf_filename: Mapped[str] = mapped_column(sa.String(200), default="")  # as uploaded
    pdf_size: Mapped[int | None] = mapped_column()

    talk_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("talks.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    event: Mapped[Event] = relationship(lazy="joined")
    submitter: Mapped[Person | None] = relationship()
    talk: Mapped[Talk | None] = relationship()
    authors: Mapped[list[AbstractAuthor]] = relationship(
        back_populates="abstract",
        order_by="AbstractAuthor.position",
        cascade="all, delete-orphan",
    )
    assignments: Mapped[list[ReviewAssignment]] = relationship(
        back_populates="abstract",
        order_by="ReviewAssignment.id",
        cascade="all, delete-orphan",
    )

    def t(self, field: str, lang: str | None = None) -> str:
        return getattr(self, field).get(lang, self.language)

    @property
    def presenting_author(self) -> AbstractAuthor | None:
        return next((a for a in self.authors if a.presenting), None)


class AbstractAuthor(Base):
    """One author of an abstract, in order; linked to a speaker record (a Person)."""

    __tablename__ = "abstract_authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    abstract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("abstracts.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=1)
    # Set when the abstract is submitted (a draft links only to records that already exist).
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"), index=True)
    # As typed on the abstract (snapshots: the speaker record may change later).
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    affiliation: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    presenting: Mapped[bool] = mapped_column(default=False)

    abstract: Mapped[Abstract] = relationship(back_populates="authors")
    person: Mapped[Person | None] = relationship()


class ReviewAssignment(Base):
    """A reviewer asked to review one abstract."""

    __tablename__ = "abstract_review_assignments"
    __table_args__ = (sa.UniqueConstraint("abstract_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    abstract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("abstracts.id", ondelete="CASCADE"), index=True
    )
    # None once the reviewer deleted their account (the review stays, anonymous).
    reviewer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    assigned_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A conflict of interest found after the assignment (an affiliation changed): "author" or
    # "affiliation"; shown to the organisers until the reviewer is taken off or it goes away.
    conflict: Mapped[str | None] = mapped_column(sa.String(20))
    conflict_found_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    abstract: Mapped[Abstract] = relationship(back_populates="assignments")
    reviewer: Mapped[Person | None] = relationship(foreign_keys=[reviewer_id])
    review: Mapped[Review | None] = relationship(
        back_populates="assignment", uselist=False, cascade="all, delete-orphan"
    )


class Review(Base):
    """Scores per criterion ({criterion key: score}) and a comment."""

    __tablename__ = "abstract_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("abstract_review_assignments.id", ondelete="CASCADE"), unique=True
    )
    scores: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # The mean of the scores, kept so that lists can sort by it in SQL.
    overall: Mapped[float] = mapped_column(sa.Float, default=0.0)
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    assignment: Mapped[ReviewAssignment] = relationship(back_populates="review")


class AbstractEmailText(Base):
    """An organiser's own wording of one email of an event, in both languages.

    Placeholders in braces ({title}, {name}, {decision}, …) are filled in when the email is
    queued; unknown ones stay as written. An empty language falls back to the built-in text.
    """

    __tablename__ = "abstract_email_texts"
    __table_args__ = (sa.UniqueConstraint("event_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    body: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
