"""People and their accounts.

A Person can exist without an account (a speaker, a guest added by an organiser); a User is
the account of exactly one Person.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.db import Base, UTCDateTime, dialect_index, utcnow


class Sector(enum.StrEnum):
    company = "company"
    university = "university"
    government_other = "government_other"


class Role(enum.StrEnum):
    organiser = "organiser"  # per series
    reviewer = "reviewer"  # per series
    member = "member"


def normalise_domain(value: str | None) -> str:
    """An email domain as compared everywhere: lower case, no "@" or final dot, IDNA (ASCII)."""
    value = (value or "").strip().lower().lstrip("@").rstrip(".")
    try:
        return value.encode("idna").decode("ascii") if value else ""
    except UnicodeError:
        return value


def email_domain(email: str | None) -> str:
    """The normalised part after the last "@" of an address; "" without one."""
    _, at, domain = (email or "").strip().lower().rpartition("@")
    return normalise_domain(domain) if at else ""


# The columns of a person's name (the forms that edit a person, erasure).
NAME_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana", "romanized_name")


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (
        # Lists of people by reading (the archive's speakers) walk this index to their page.
        sa.Index(
            "ix_people_reading", "family_name_kana", "given_name_kana", "romanized_name", "id"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_name: Mapped[str] = mapped_column(sa.String(100), default="")
    given_name: Mapped[str] = mapped_column(sa.String(100), default="")
    family_name_kana: Mapped[str] = mapped_column(sa.String(100), default="")
    given_name_kana: Mapped[str] = mapped_column(sa.String(100), default="")
    romanized_name: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str | None] = mapped_column(sa.String(254), index=True)
    affiliation: Mapped[str] = mapped_column(sa.String(200), default="")
    # The institution the typed affiliation names (portal.speakers.institutions matches it).
    institution_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    sector: Mapped[Sector | None] = mapped_column(sa.Enum(Sector, native_enum=False, length=20))
    country: Mapped[str] = mapped_column(sa.String(2), default="")
    preferred_language: Mapped[str] = mapped_column(sa.String(2), default="ja")
    # Names, reading (kana and romaji) and email folded into one string for searching
    # (portal.accounts.search; kept fresh on every change by a session listener).
    search_key: Mapped[str] = mapped_column(sa.String(500), default="")
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User | None] = relationship(back_populates="person", uselist=False)

    @property
    def display_name(self) -> str:
        from portal.i18n import format_person_name

        return format_person_name(self)

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.romanized_name or self.family_name}>"


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), unique=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    # ``email_domain(email)``, kept by ``_set_email_domain``: corporate membership matches a
    # company's domains on it with equality (an index lookup, not a LIKE over every account).
    email_domain: Mapped[str] = mapped_column(sa.String(253), default="", index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Changing the password invalidates sessions and outstanding reset links.
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship(back_populates="user", lazy="joined")
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @validates("email")
    def _set_email_domain(self, _key, value):
        self.email_domain = email_domain(value)
        return value

    def get_id(self) -> str:
        # Flask-Login stores this; changing the password changes it and ends old sessions.
        return f"{self.id}:{int(self.password_changed_at.timestamp())}"

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def preferred_language(self) -> str:
        return self.person.preferred_language

    @property
    def display_name(self) -> str:
        return self.person.display_name

    def has_role(self, role: Role | str, series_id: int | None = None) -> bool:
        if self.is_admin:
            return True
        return any(
            r.role == role and (series_id is None or r.series_id in (None, series_id))
            for r in self.roles
        )

    def is_organiser_of(self, series) -> bool:
        return self.has_role(Role.organiser, series.id if series is not None else None)

    @property
    def is_organiser(self) -> bool:
        return self.is_admin or any(r.role == Role.organiser for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (sa.UniqueConstraint("user_id", "role", "series_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(sa.Enum(Role, native_enum=False, length=20))
    series_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("series.id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User] = relationship(back_populates="roles")


class LoginAttempt(Base):
    """Failed logins, counted per email and per address to rate-limit guessing."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    remote_addr: Mapped[str] = mapped_column(sa.String(64), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


# The index of the folded search key: on PostgreSQL a trigram index (pg_trgm, GIN), which serves
# LIKE '%…%' in the global people searches; elsewhere an ordinary index.
sa.event.listen(
    Person.__table__,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
dialect_index(
    "ix_people_search_key",
    Person.search_key,
    postgresql={"using": "gin", "ops": {"search_key": "gin_trgm_ops"}},
)


def _install_search_keys() -> None:
    from portal.accounts import search

    search.install()


_install_search_keys()
