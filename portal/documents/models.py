"""Issued documents: receipts (領収書) and invoices (請求書).

An issued document is never changed. A correction or a cancellation is a new document that
names the one it replaces (``replaces_id``). Numbers are sequential per kind and calendar year
of issue (Japan time) for the one issuer, and read 領収書番号 R-2026-000123 / 請求書番号
I-2026-000045.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Series


class DocumentKind(enum.StrEnum):
    receipt = "receipt"
    invoice = "invoice"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        sa.UniqueConstraint("kind", "year", "number"),
        sa.Index("ix_documents_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id"))
    kind: Mapped[DocumentKind] = mapped_column(sa.Enum(DocumentKind, native_enum=False, length=20))
    year: Mapped[int] = mapped_column()  # calendar year of issue, Japan time
    number: Mapped[int] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    language: Mapped[str] = mapped_column(sa.String(2))
    # Who the document is for: a person (name) and/or a company; the owner may download it.
    recipient_name: Mapped[str] = mapped_column(sa.String(300), default="")
    recipient_company: Mapped[str] = mapped_column(sa.String(300), default="")
    recipient_address: Mapped[str] = mapped_column(sa.Text, default="")
    owner_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    # What it is for, in the document's language, and its lines:
    # [{"label": str, "amount_minor": int}], amounts in minor units of ``currency``.
    purpose: Mapped[str] = mapped_column(sa.Text, default="")
    lines: Mapped[list] = mapped_column(sa.JSON, default=list)
    currency: Mapped[str] = mapped_column(sa.String(3))
    total_minor: Mapped[int] = mapped_column()
    tax_rate: Mapped[int] = mapped_column(default=0)  # percent, included in the total
    tax_minor: Mapped[int] = mapped_column(default=0)
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime())  # invoices
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # receipts: date of payment
    # The issuer as it was at issue time: name, address, registration number, bank account.
    issuer: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # What the document is about, e.g. ("registration", 12) or ("membership_fee", 3).
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int] = mapped_column()
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    is_cancellation: Mapped[bool] = mapped_column(default=False)

    series: Mapped[Series] = relationship(lazy="joined")
    replaces: Mapped[Document | None] = relationship(remote_side="Document.id")

    @property
    def reference(self) -> str:
        """The printed number, e.g. R-2026-000012 (receipt) / I-2026-000003 (invoice)."""
        prefix = "R" if self.kind == DocumentKind.receipt else "I"
        return f"{prefix}-{self.year}-{self.number:06d}"
