"""The audit log: who changed what, when. Every state-changing service function writes one."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int] = mapped_column()
    action: Mapped[str] = mapped_column(sa.String(60))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)


_INSERT = sa.insert(AuditEntry.__table__)  # built once: every state change writes one


def record(
    session: Session, actor, subject_type: str, subject_id: int, action: str, **data
) -> None:
    """Write an audit entry in the session's transaction (committed or rolled back with the
    change it describes). One plain INSERT, not an ORM object to flush: it runs inside every
    registration's lock (docs/performance.md)."""
    actor_id = (
        getattr(actor, "id", None) if actor is not None and not isinstance(actor, int) else actor
    )
    session.execute(
        _INSERT,
        {
            "at": utcnow(),
            "actor_id": actor_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "action": action,
            "data": data,
        },
    )


def history(session: Session, subject_type: str, subject_id: int) -> list[AuditEntry]:
    return list(
        session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )
