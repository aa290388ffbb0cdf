"""The list of a series (subscriptions and their history) and its announcements."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person
from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Event, Series
from portal.i18n import Bilingual, BilingualText


def _enum(cls, length=20):
    return sa.Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class SubscriptionStatus(enum.StrEnum):
    pending = "pending"  # asked to join, has not confirmed the email yet (not on the list)
    confirmed = "confirmed"  # on the list, receives announcements
    imported = "imported"  # imported by the office, not yet confirmed (on the list, not sent to)
    left = "left"  # left the list
    undeliverable = "undeliverable"  # the address bounced or complained (not sent to)


# On the list (counted in 登録人数): these statuses.
ON_LIST = (SubscriptionStatus.confirmed, SubscriptionStatus.imported)


class Subscription(Base):
    """One person on one series' list (one row per series and person, whatever happens)."""

    __tablename__ = "list_subscriptions"
    __table_args__ = (sa.UniqueConstraint("series_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus), index=True)
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    source: Mapped[str] = mapped_column(sa.String(20), default="")  # page, signup, registration…
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    series: Mapped[Series] = relationship()
    person: Mapped[Person] = relationship()

    @property
    def on_list(self) -> bool:
        return self.status in ON_LIST


class SubscriptionEvent(Base):
    """The list's history: every change of a subscription's status, with its effect on the
    list's size (``delta``: +1 joined, -1 left, 0 no change), so 登録人数 on any day is a sum."""

    __tablename__ = "list_subscription_events"
    __table_args__ = (sa.Index("ix_list_subscription_events_series_at", "series_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("list_subscriptions.id", ondelete="CASCADE"), index=True
    )
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(20))  # requested, joined, imported, left, …
    status: Mapped[str] = mapped_column(sa.String(20))  # the status after the change
    delta: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(sa.String(200), default="")


class Audience(enum.StrEnum):
    list = "list"  # confirmed people on the list
    members = "members"  # … who work for a member company
    participants = "participants"  # … who took part in the last year
    speakers = "speakers"  # the series' speakers of the last year (and the event's)


class AnnouncementStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # to be sent at send_at (queued: deliveries not created yet)
    sending = "sending"  # deliveries created, being sent
    sent = "sent"  # every delivery sent or given up


class Announcement(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(
        sa.ForeignKey("series.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="SET NULL"))
    subject: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    body: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)  # Markdown
    audience: Mapped[Audience] = mapped_column(_enum(Audience), default=Audience.list)
    status: Mapped[AnnouncementStatus] = mapped_column(
        _enum(AnnouncementStatus), default=AnnouncementStatus.draft, index=True
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recipients: Mapped[int | None] = mapped_column()  # deliveries created
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    series: Mapped[Series] = relationship()
    event: Mapped[Event | None] = relationship()

    @property
    def editable(self) -> bool:
        return self.status in (AnnouncementStatus.draft, AnnouncementStatus.scheduled)


class DeliveryStatus(enum.StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"  # refused by the mail server after the last try
    uncertain = "uncertain"  # a sender died while handing it over: not sent again
    withdrawn = "withdrawn"  # the person left the list (or bounced) before it was sent


class AnnouncementDelivery(Base):
    """One announcement to one person: created in one INSERT … SELECT, claimed, sent once."""

    __tablename__ = "announcement_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("announcement_id", "person_id"),
        sa.Index("ix_announcement_deliveries_todo", "announcement_id", "status", "claimed_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        sa.ForeignKey("announcements.id", ondelete="CASCADE")
    )
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.queued
    )
    # A sender's lease on the row; a row whose lease expired is taken over by another sender.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Committed just before the SMTP server is given the message: a row with it set and no
    # sent_at after its sender died may have been delivered, so it is never sent again.
    handing_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
