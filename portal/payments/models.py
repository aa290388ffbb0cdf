"""The payments ledger: one row per payment attempt, refunds, and processed webhook events.

A ``Payment`` has an explicit state machine (``MOVES``): pending → succeeded | failed | expired;
succeeded → partially_refunded | refunded; partially_refunded → partially_refunded | refunded.
The provider's raw answer (the Checkout Session as Stripe last described it) is kept beside it
in ``provider_data``. ``method`` is the code of the payment provider that took it (``card``,
``bank_transfer``, ``at_door`` or a third-party plugin's), so the payments list and its totals
cover every method (``portal.payments.providers``).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person
from portal.db import Base, UTCDateTime, dialect_index, utcnow
from portal.documents.models import Document
from portal.events.models import Event
from portal.registration.models import Registration


class PaymentState(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    expired = "expired"
    refunded = "refunded"
    partially_refunded = "partially_refunded"


P = PaymentState

# The only moves a payment can make; anything else is an error, not a second payment.
MOVES: dict[PaymentState, set[PaymentState]] = {
    P.pending: {P.succeeded, P.failed, P.expired},
    P.succeeded: {P.partially_refunded, P.refunded},
    P.partially_refunded: {P.partially_refunded, P.refunded},
    P.failed: set(),
    P.expired: set(),
    P.refunded: set(),
}

# States in which money has been received (and may be refunded).
PAID_STATES = (P.succeeded, P.partially_refunded, P.refunded)


class Payment(Base):
    """One payment attempt for a registration, in integer minor units of ``currency``."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.Index("ix_payments_event_state", "event_id", "state"),
        # Reconcile's "pending attempts": a partial index, tiny whatever the history (i19).
        dialect_index(
            "ix_payments_pending",
            "id",
            sqlite={"where": sa.text("state = 'pending'")},
            postgresql={"where": sa.text("state = 'pending'")},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    # The provider's code (``PaymentProvider.code``).
    method: Mapped[str] = mapped_column(sa.String(20))
    state: Mapped[PaymentState] = mapped_column(
        sa.Enum(PaymentState, native_enum=False, length=20), default=PaymentState.pending
    )
    # What the registration owed when the attempt began.
    amount_minor: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    # What the provider reported as paid (may differ: then the payment is flagged).
    received_minor: Mapped[int | None] = mapped_column()
    received_currency: Mapped[str | None] = mapped_column(sa.String(3))
    refunded_minor: Mapped[int] = mapped_column(default=0)
    # Card: the attempt's idempotency key and the exact parameters sent to create the session,
    # so that a retry after a network failure sends the same request and gets the same session.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    request_params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    provider_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    provider_payment_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The provider's raw answer, as last received (Checkout Session, or the event's object).
    provider_data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # Something an organiser must look at (amount mismatch, paid after cancellation …).
    flag: Mapped[str | None] = mapped_column(sa.String(40))
    flag_detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Set when the registration stopped waiting for this attempt (paid otherwise, cancelled):
    # ``portal payments reconcile`` expires such sessions at Stripe.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    receipt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"), index=True)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    registration: Mapped[Registration] = relationship()
    event: Mapped[Event] = relationship()
    person: Mapped[Person] = relationship()
    receipt: Mapped[Document | None] = relationship()
    refunds: Mapped[list[Refund]] = relationship(
        back_populates="payment", order_by="Refund.id", cascade="all, delete-orphan"
    )

    @property
    def refundable_minor(self) -> int:
        if self.state not in (P.succeeded, P.partially_refunded):
            return 0
        return max(0, (self.received_minor or self.amount_minor) - self.refunded_minor)

    @property
    def net_minor(self) -> int:
        if self.state not in PAID_STATES:
            return 0
        return (self.received_minor or self.amount_minor) - self.refunded_minor

    def __repr__(self) -> str:
        return f"<Payment {self.id} {self.method} {self.state} {self.amount_minor} {self.currency}>"


class RefundState(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class Refund(Base):
    """Money given back for a payment, in full or in part (through Stripe, or recorded)."""

    __tablename__ = "payment_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    amount_minor: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    state: Mapped[RefundState] = mapped_column(
        sa.Enum(RefundState, native_enum=False, length=20), default=RefundState.pending
    )
    # "portal": asked from the payments list; "provider": made in Stripe's dashboard.
    source: Mapped[str] = mapped_column(sa.String(20), default="portal")
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    provider_refund_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    provider_data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    payment: Mapped[Payment] = relationship(back_populates="refunds")


class ProcessedWebhookEvent(Base):
    """A Stripe event already handled: a second delivery of the same id changes nothing."""

    __tablename__ = "processed_webhook_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    outcome: Mapped[str] = mapped_column(sa.String(60), default="")
    payment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReceiptAddressee(Base):
    """The 宛名 a participant wants on their receipt, chosen before it is issued: a company
    (printed with 御中) or a person (printed with 様)."""

    __tablename__ = "payment_receipt_addressees"

    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10), default="person")
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
