"""Money that arrived without a registration to confirm: the page organisers look at.

Two kinds (issue #11):
- **Unmatched payments**: a provider took money through a checkout the portal did not create
  but that names one of our registrations (a Payment Link, another app on the same account).
  The ledger keeps it as a payment flagged ``unmatched_session``; it confirms nothing and is
  refunded from the event's payments list. Organisers see those of their own series.
- **Unknown paid sessions**: a paid checkout that names none of our registrations. It belongs
  to no event, so it is kept only as the stored webhook event (outcome
  ``unknown_paid_session``) and shown to administrators, who refund it at the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from portal.events.models import Event
from portal.payments.models import Payment, ProcessedWebhookEvent
from portal.people import managed_series_ids

UNMATCHED_FLAG = "unmatched_session"
UNKNOWN_PAID_SESSION = "unknown_paid_session"  # the webhook event's outcome


def unmatched_payments(user) -> sa.Select:
    """Ledger payments flagged as unmatched, of the series the user organises, newest first."""
    stmt = (
        sa.select(Payment)
        .where(Payment.flag == UNMATCHED_FLAG)
        .options(joinedload(Payment.person), joinedload(Payment.event))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    series_ids = managed_series_ids(user)
    if series_ids is not None:
        stmt = stmt.join(Event, Event.id == Payment.event_id).where(
            Event.series_id.in_(series_ids or [-1])
        )
    return stmt


@dataclass(frozen=True)
class UnknownSession:
    """What the provider told us of a paid checkout that names nothing of ours."""

    event_id: str
    received_at: datetime
    session_id: str
    payment_intent: str
    amount_minor: int
    currency: str
    email: str

    @classmethod
    def of(cls, row: ProcessedWebhookEvent) -> UnknownSession:
        obj = ((row.payload or {}).get("data") or {}).get("object") or {}
        details = obj.get("customer_details") or {}
        return cls(
            event_id=row.id,
            received_at=row.received_at,
            session_id=str(obj.get("id") or ""),
            payment_intent=str(obj.get("payment_intent") or ""),
            amount_minor=int(obj.get("amount_total") or 0),
            currency=str(obj.get("currency") or "").upper(),
            email=str(details.get("email") or obj.get("customer_email") or ""),
        )


def unknown_sessions() -> sa.Select:
    """Stored webhook events of paid checkouts naming none of our registrations."""
    return (
        sa.select(ProcessedWebhookEvent)
        .where(ProcessedWebhookEvent.outcome == UNKNOWN_PAID_SESSION)
        .order_by(ProcessedWebhookEvent.received_at.desc(), ProcessedWebhookEvent.id)
    )


def needing_attention(session: Session, user) -> int:
    """How many of both kinds the user is shown (for the organiser home page)."""
    count = session.scalar(
        sa.select(sa.func.count()).select_from(unmatched_payments(user).order_by(None).subquery())
    )
    if getattr(user, "is_admin", False):
        count += session.scalar(
            sa.select(sa.func.count()).select_from(unknown_sessions().order_by(None).subquery())
        )
    return count or 0
