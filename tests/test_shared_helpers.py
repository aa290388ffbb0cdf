"""The one copy of each small helper: text folding and LIKE patterns, yes/no words, local time,
``UserError``, and finding a live person by email."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from plugins.membership import services as membership
from portal.accounts.models import Person
from portal.errors import UserError
from portal.i18n import BilingualText
from portal.localtime import at, parse_local, start_of_day, to_local, to_utc, today
from portal.speakers.identity import person_by_email
from portal.speakers.models import SpeakerProfile
from portal.text import compact, fold, like_pattern, truthy
from tests import factories as f


def test_fold_and_compact():
    assert fold("ＹＡＭＡＤＡ　ヤマダ Ōno") == "yamada やまだ ono"
    assert compact("山田　太郎 Taro") == "山田太郎taro"


def test_like_pattern_escapes_wildcards(session):
    assert like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"
    session.add_all([f.person(session, family_name="100%"), f.person(session, family_name="1000")])
    session.flush()
    found = session.scalars(
        sa.select(Person.family_name).where(
            Person.family_name.like(like_pattern("0%"), escape="\\")
        )
    ).all()
    assert found == ["100%"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (1, True),
        (" Yes ", True),
        ("on", True),
        ("Y", True),
        ("TRUE", True),
        ("1", True),
        (False, False),
        (0, False),
        (None, False),
        ("", False),
        ("no", False),
        ("off", False),
        ("2", False),
    ],
)
def test_truthy(value, expected):
    assert truthy(value) is expected


def test_local_time_round_trip():
    local = datetime(2026, 3, 1, 23, 59)
    instant = to_utc(local, "Asia/Tokyo")
    assert instant == datetime(2026, 3, 1, 14, 59, tzinfo=UTC)
    assert to_local(instant, "Asia/Tokyo") == local
    assert to_local(instant, "America/New_York") == datetime(2026, 3, 1, 9, 59)
    assert parse_local("2026-03-01T23:59", "Asia/Tokyo") == instant
    assert parse_local("not a time", "Asia/Tokyo") is None
    assert parse_local("", "Asia/Tokyo") is None
    assert start_of_day(date(2026, 3, 1), "Asia/Tokyo") == datetime(2026, 2, 28, 15, 0, tzinfo=UTC)
    assert at(date(2026, 7, 4), 9, 30, "America/New_York").astimezone(UTC) == datetime(
        2026, 7, 4, 13, 30, tzinfo=UTC
    )


def test_today_is_the_zones_date_not_the_servers():
    late_evening_utc = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)  # 1 April, 01:00 in Tokyo
    assert today("Asia/Tokyo", late_evening_utc) == date(2026, 4, 1)
    assert today("America/New_York", late_evening_utc) == date(2026, 3, 31)


def test_user_error_keeps_message_and_field():
    class Refused(UserError):
        default_message = "nope"

    error = Refused(field="email")
    assert (error.message, error.field, str(error)) == ("nope", "email", "nope")
    assert isinstance(Refused("x"), ValueError)


def test_every_area_error_is_a_user_error():
    from plugins.abstracts.services import AbstractError
    from plugins.archive.services import ArchiveError
    from plugins.exchange_meeting.services import ExchangeMeetingError
    from plugins.membership.services import MembershipError
    from plugins.webinar.services import ReportError
    from portal.accounts.services import AccountError, RateLimited
    from portal.accounts.tokens import TokenError
    from portal.events.services import StatusChangeError
    from portal.payments.services import PaymentError
    from portal.programme.services import ProgrammeError
    from portal.registration.services import RegistrationError
    from portal.speakers.services import SpeakerError

    for cls in (
        AbstractError,
        ArchiveError,
        ExchangeMeetingError,
        MembershipError,
        ReportError,
        AccountError,
        RegistrationError,
        SpeakerError,
        PaymentError,
        ProgrammeError,
        StatusChangeError,
        TokenError,
        RateLimited,
    ):
        assert issubclass(cls, UserError), cls
    error = AccountError("email_taken", field="email")
    assert (error.code, error.field) == ("email_taken", "email")
    assert str(error.message) == "This email address already belongs to another account."
    taken = MembershipError("domain_taken:a.jp, b.jp", field="domains")
    assert (taken.code, str(taken.message)) == (
        "domain_taken:a.jp, b.jp",
        "Another company of this series already has these domains: a.jp, b.jp.",
    )
    from portal.events.models import EventStatus

    moved = StatusChangeError(EventStatus.cancelled, EventStatus.open)
    assert (str(moved.message), moved.field) == (
        "An event cannot move from “Cancelled” to “Open for registration”.",
        "status",
    )


def test_person_by_email_prefers_the_account_and_skips_anonymised(session):
    typed = f.person(session, email="Hana@Example.org")
    holder = f.user(session, email="hana@example.org").person
    assert person_by_email(session, " HANA@example.org ") == holder
    holder.anonymised_at = datetime(2026, 1, 1, tzinfo=UTC)
    session.flush()
    assert person_by_email(session, "hana@example.org") == typed
    typed.anonymised_at = datetime(2026, 1, 1, tzinfo=UTC)
    session.flush()
    assert person_by_email(session, "hana@example.org") is None
    assert person_by_email(session, "") is None


def test_person_by_email_follows_a_merge(session):
    survivor = f.person(session, email="keep@example.org")
    merged = f.person(session, email="old@example.org")
    session.add_all(
        [
            SpeakerProfile(person_id=survivor.id, links=[]),
            SpeakerProfile(person_id=merged.id, links=[], merged_into_id=survivor.id),
        ]
    )
    session.flush()
    assert person_by_email(session, "old@example.org") == survivor


def test_membership_never_links_a_merged_record(session):
    series = f.series(session)
    company = membership.create_company(
        session,
        series,
        None,
        domains=[],
        name=BilingualText(ja="架空金属株式会社", en="Kakuu Metals"),
        contact_name="佐藤 花子",
        contact_email="hanako@example.org",
        billing_address="東京都",
        language="ja",
    )
    survivor = f.person(session, email="keep@example.org")
    merged = f.person(session, email="old@example.org")
    session.add_all(
        [
            SpeakerProfile(person_id=survivor.id, links=[]),
            SpeakerProfile(person_id=merged.id, links=[], merged_into_id=survivor.id),
        ]
    )
    session.flush()
    row = membership.add_member(session, company, "OLD@example.org", None)
    assert row.person_id == survivor.id
