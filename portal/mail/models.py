"""The outbox: every email is a row written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, dialect_index, utcnow


class OutboxEmail(Base):
    __tablename__ = "outbox_emails"
    __table_args__ = (
        sa.Index("ix_outbox_due", "sent_at", "next_attempt_at"),
        # Mails still to send (partial: the sent and failed history is not in it). The two
        # always-NULL columns lead so that SQLite's planner prefers it to ix_outbox_due.
        dialect_index(
            "ix_outbox_emails_unsent",
            "sent_at",
            "failed_at",
            "next_attempt_at",
            sqlite={"where": sa.text("sent_at IS NULL AND failed_at IS NULL")},
            postgresql={"where": sa.text("sent_at IS NULL AND failed_at IS NULL")},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text)
    template: Mapped[str] = mapped_column(sa.String(100), default="")
    # Fixed when the mail is queued, so every retry carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(sa.String(300), default="")
    reply_to: Mapped[str] = mapped_column(sa.String(254), default="")
    # Extra headers, e.g. List-Unsubscribe / List-Unsubscribe-Post for announcements.
    headers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A sender claims a mail (a lease) before talking to the SMTP server, so two senders
    # running at once never deliver the same mail; an expired claim is taken over.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(sa.Text, default="")

    attachments: Mapped[list[OutboxAttachment]] = relationship(
        back_populates="email", cascade="all, delete-orphan", order_by="OutboxAttachment.id"
    )


class OutboxAttachment(Base):
    """A file sent with an email, kept until the mail is sent: either its bytes (a receipt or
    invoice PDF) or, when ``generator`` is set, the name and arguments of the function that
    renders it when the mail is sent (the ticket's PDF and QR PNG: rendered by the sender, not
    while a registration holds the event lock; ``portal.mail.services.attachment_generator``).
    """

    __tablename__ = "outbox_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(
        sa.ForeignKey("outbox_emails.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    generator: Mapped[str] = mapped_column(sa.String(50), default="")
    generator_args: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    email: Mapped[OutboxEmail] = relationship(back_populates="attachments")
