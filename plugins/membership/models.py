"""Corporate membership (法人会員) of a series, per fiscal year (年度, April to March).

- ``MemberCompany``: a company of one series, its bilingual name, contact person, billing
  address and email domains (``CompanyDomain``, one row per domain, unique per series).
- ``Membership``: the company's membership in one fiscal year: fee tier, amount, state
  (unpaid → paid, or cancelled). Its invoice and receipt are ``portal.documents`` documents
  with ``subject_type="membership_fee"`` and ``subject_id=membership.id``.
- ``CompanyMember``: a person linked to a company by an invitation or by an organiser, or a
  record that an organiser removed a person (``removed_at``) who would otherwise be a member
  through their email domain.
- ``MemberInvitation``: an emailed, signed, expiring link from the company's contact.
- ``RenewalReminder``: one row per company and fiscal year, so a reminder goes out once.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Person
from portal.db import Base, UTCDateTime, utcnow
from portal.events.models import Series
from portal.i18n import Bilingual, BilingualText
from portal.invitations import InvitationMixin


class MembershipState(enum.StrEnum):
    unpaid = "unpaid"
    paid = "paid"
    cancelled = "cancelled"


class MemberHow(enum.StrEnum):
    domain = "domain"  # verified email address at one of the company's domains
    invited = "invited"  # accepted an invitation from the company's contact
    organiser = "organiser"  # added by an organiser


class MemberCompany(Base):
    __tablename__ = "member_companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(
        sa.ForeignKey("series.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[BilingualText] = mapped_column(Bilingual())
    contact_name: Mapped[str] = mapped_column(sa.String(200), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="", index=True)
    billing_address: Mapped[str] = mapped_column(sa.Text, default="")
    # Language of the contact's emails and of the invoices and receipts (Japanese by default).
    language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    series: Mapped[Series] = relationship(lazy="joined")
    domain_rows: Mapped[list[CompanyDomain]] = relationship(
        back_populates="company",
        cascade="all, delete-orphan",
        order_by="CompanyDomain.domain",
        lazy="selectin",
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="company", order_by="Membership.fiscal_year.desc()"
    )

    @property
    def domains(self) -> list[str]:
        return [row.domain for row in self.domain_rows]


class CompanyDomain(Base):
    __tablename__ = "member_company_domains"
    __table_args__ = (sa.UniqueConstraint("series_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("member_companies.id", ondelete="CASCADE"), index=True
    )
    # Denormalised from the company so that a domain belongs to one company per series.
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("series.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(sa.String(253))

    company: Mapped[MemberCompany] = relationship(back_populates="domain_rows")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("company_id", "fiscal_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("member_companies.id", ondelete="CASCADE"), index=True
    )
    fiscal_year: Mapped[int] = mapped_column(index=True)
    tier: Mapped[BilingualText] = mapped_column(Bilingual(), default=BilingualText)
    amount_minor: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    state: Mapped[MembershipState] = mapped_column(
        sa.Enum(MembershipState, native_enum=False, length=20),
        default=MembershipState.unpaid,
        index=True,
    )
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    company: Mapped[MemberCompany] = relationship(back_populates="memberships", lazy="joined")


class CompanyMember(Base):
    __tablename__ = "member_company_people"
    __table_args__ = (sa.UniqueConstraint("company_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("member_companies.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    how: Mapped[MemberHow] = mapped_column(sa.Enum(MemberHow, native_enum=False, length=20))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    company: Mapped[MemberCompany] = relationship(lazy="joined")
    person: Mapped[Person] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.removed_at is None


class MemberInvitation(InvitationMixin, Base):
    """A colleague invited to join a member company: the link works once."""

    __tablename__ = "member_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("member_companies.id", ondelete="CASCADE"), index=True
    )
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL")
    )

    company: Mapped[MemberCompany] = relationship(lazy="joined")

    def closed_reason(self) -> str | None:
        return "used" if self.accepted_at is not None else None


class RenewalReminder(Base):
    __tablename__ = "membership_renewal_reminders"
    __table_args__ = (sa.UniqueConstraint("company_id", "fiscal_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("member_companies.id", ondelete="CASCADE"), index=True
    )
    fiscal_year: Mapped[int] = mapped_column()  # the year the reminder is about
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
