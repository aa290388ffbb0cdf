"""Benchmark data: the schema from the models, the rush event, and demo data scaled up.

The schema comes from ``portal.models.load_all_models()`` (``metadata.create_all``), as in the
tests, so a benchmark never depends on the state of the Alembic history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.accounts.models import Person, Sector, User
from portal.accounts.passwords import hash_password
from portal.db import make_engine, utcnow
from portal.demo import DEMO_ACCOUNTS, load_demo
from portal.events.models import (
    AttendanceMode,
    Event,
    EventFormat,
    EventStatus,
    Series,
    SeriesKind,
    Talk,
)
from portal.i18n import BilingualText
from portal.models import load_all_models
from portal.registration.models import FeeCategory, Registration, RegistrationState

RUSH_PASSWORD = "bench-rush-password"
SECTORS = (Sector.company, Sector.company, Sector.university, Sector.government_other)
FAMILY = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤")
GIVEN = ("健", "優子", "誠", "直美", "大輔", "恵", "浩二", "陽子", "翔", "由美")
ROMAN_FAMILY = ("Sato", "Suzuki", "Takahashi", "Tanaka", "Ito")
ROMAN_GIVEN = ("Ken", "Yuko", "Makoto", "Naomi", "Daisuke", "Megumi", "Koji", "Yoko")


def create_schema(url: str) -> sa.Engine:
    """A new, empty schema on ``url``; returns an engine on it (dispose it when done)."""
    engine = make_engine(url)
    metadata = load_all_models()
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return engine


def _people(n: int, prefix: str, start: int = 0) -> list[Person]:
    people = []
    for i in range(start, start + n):
        people.append(
            Person(
                family_name=FAMILY[i % len(FAMILY)],
                given_name=GIVEN[(i // len(FAMILY)) % len(GIVEN)],
                family_name_kana="さとう",
                given_name_kana="けん",
                romanized_name=(
                    f"{ROMAN_GIVEN[i % len(ROMAN_GIVEN)]} {ROMAN_FAMILY[i % len(ROMAN_FAMILY)]} {i}"
                ),
                email=f"{prefix}-{i}@example.org",
                affiliation=f"架空金属株式会社 {i % 37}",
                sector=SECTORS[i % len(SECTORS)],
                country="JP",
                preferred_language="ja" if i % 5 else "en",
            )
        )
    return people


# -- the rush --------------------------------------------------------------------------------


@dataclass
class RushData:
    event_id: int
    slug: str
    seats: int
    people: list[tuple[int, str]]  # (person id, email)
    password: str


def seed_rush(engine: sa.Engine, *, seats: int = 280, people: int = 400) -> RushData:
    """One open on-site event with ``seats`` seats and one free fee category (registrations are
    confirmed at once), and ``people`` verified accounts sharing one password (hashed once)."""
    password_hash = hash_password(RUSH_PASSWORD)
    now = utcnow()
    with Session(engine) as session:
        series = Series(
            slug="rush-series",
            kind=SeriesKind.study_group,
            name=BilingualText(ja="レアメタル研究会", en="Rare Metal Study Group"),
            default_language="ja",
            currency="JPY",
            timezone="Asia/Tokyo",
        )
        session.add(series)
        session.flush()
        starts = now.replace(microsecond=0) + timedelta(days=30)
        event = Event(
            series_id=series.id,
            number=89,
            slug="rush-meeting",
            title=BilingualText(
                ja="第89回 レアメタル研究会", en="Rare Metal Study Group, meeting 89"
            ),
            starts_at=starts,
            ends_at=starts + timedelta(hours=3, minutes=30),
            timezone="Asia/Tokyo",
            venue=BilingualText(ja="講堂(280席)", en="Auditorium (280 seats)"),
            format=EventFormat.onsite,
            capacity_onsite=seats,
            status=EventStatus.open,
        )
        session.add(event)
        session.flush()
        session.add(
            FeeCategory(
                event_id=event.id,
                code="free",
                name=BilingualText(ja="参加費無料", en="Free admission"),
                price_minor=0,
                position=1,
            )
        )
        persons = _people(people, "rush")
        session.add_all(persons)
        session.flush()
        session.add_all(
            User(
                person_id=p.id,
                email=p.email,
                password_hash=password_hash,
                email_verified_at=now,
                password_changed_at=now - timedelta(days=1),
            )
            for p in persons
        )
        session.commit()
        return RushData(
            event_id=event.id,
            slug=event.slug,
            seats=seats,
            people=[(p.id, p.email) for p in persons],
            password=RUSH_PASSWORD,
        )


# -- demo data scaled up ---------------------------------------------------------------------


@dataclass
class PagesData:
    event_slug: str
    series_slug: str
    email: str
    password: str
    registrations: int
    past_events: int


def _past_day(number: int) -> date:
    # About five meetings a year since 2002 (meeting 93 was in November 2020).
    return date(2002, 4, 1) + timedelta(days=71 * (number - 1))


def _fill_past_events(session: Session, series: Series, wanted: int) -> int:
    """Add closed past meetings until the series has ``wanted`` of them; returns the count."""
    now = utcnow()
    past = session.scalar(
        sa.select(sa.func.count()).where(Event.series_id == series.id, Event.ends_at < now)
    )
    used = set(session.scalars(sa.select(Event.number).where(Event.series_id == series.id)))
    tz = ZoneInfo(series.timezone)
    number = 0
    while past < wanted:
        number += 1
        if number in used:
            continue
        day = _past_day(number)
        if day >= now.date():
            # Numbers after today's meetings: keep the count, date them before the first.
            day = date(2002, 1, 1) - timedelta(days=30 * (number - len(used)))
        session.add(
            Event(
                series_id=series.id,
                number=number,
                slug=f"{series.slug}-{number}",
                title=BilingualText(
                    ja=f"第{number}回 レアメタル研究会",
                    en=f"Rare Metal Study Group, meeting {number}",
                ),
                starts_at=datetime.combine(day, time(14, 30), tzinfo=tz),
                ends_at=datetime.combine(day, time(18, 0), tzinfo=tz),
                timezone=series.timezone,
                venue=BilingualText(ja="駒場", en="Komaba"),
                format=EventFormat.onsite,
                capacity_onsite=280,
                status=EventStatus.closed,
            )
        )
        past += 1
    session.flush()
    return past


def seed_pages(
    engine: sa.Engine,
    *,
    registrations: int = 300,
    talks: int = 4,
    past_events: int = 100,
    plugins: tuple[str, ...] = ("calendar", "archive", "attendance"),
    upload_folder: str | None = None,
) -> PagesData:
    """``portal.demo.load_demo``, then the upcoming study-group meeting gets ``talks`` talks,
    ``registrations`` confirmed registrations (in the demo's fee categories) and the given
    plugins besides the demo's, and the series gets ``past_events`` past meetings."""
    from portal.app import create_app

    # The demo issues documents (membership invoices), which read the app's settings.
    app = create_app(
        {
            "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "SECRET_KEY": "bench-seed",
            **({"UPLOAD_FOLDER": upload_folder} if upload_folder else {}),
        }
    )
    try:
        with app.app_context():
            return _seed_pages(engine, registrations, talks, past_events, plugins)
    finally:
        app.extensions["portal_db"]["engine"].dispose()


def _programme(session: Session, event: Event) -> None:
    """A study-group meeting's timetable (the timetable page): opening, the talks in one
    session, a break, the discussion and the exchange meeting."""
    from portal.programme.models import ItemKind, ProgrammeItem, TalkPlacement

    if session.scalar(sa.select(sa.func.count()).where(ProgrammeItem.event_id == event.id)):
        return
    talks = list(
        session.scalars(
            sa.select(Talk).where(Talk.event_id == event.id).order_by(Talk.position, Talk.id)
        )
    )
    start = event.starts_at
    talks_end = start + timedelta(minutes=10 + 50 * len(talks))

    def item(kind, ja, en, begins, ends):
        row = ProgrammeItem(
            event_id=event.id,
            kind=kind,
            title=BilingualText(ja=ja, en=en),
            room="A",
            starts_at=begins,
            ends_at=ends,
        )
        session.add(row)
        return row

    item(ItemKind.other, "開会挨拶", "Opening", start, start + timedelta(minutes=10))
    lectures = item(ItemKind.session, "講演", "Lectures", start + timedelta(minutes=10), talks_end)
    item(ItemKind.break_, "休憩", "Break", talks_end, talks_end + timedelta(minutes=15))
    discussion = talks_end + timedelta(minutes=15)
    item(ItemKind.other, "総合討論", "Discussion", discussion, discussion + timedelta(minutes=30))
    reception = discussion + timedelta(minutes=40)
    item(
        ItemKind.reception, "交流会", "Exchange meeting", reception, reception + timedelta(hours=2)
    )
    session.flush()
    session.add_all(TalkPlacement(talk_id=t.id, item_id=lectures.id) for t in talks)


def _seed_pages(engine, registrations, talks, past_events, plugins) -> PagesData:
    now = utcnow()
    with Session(engine) as session:
        load_demo(session)
        series = session.scalar(sa.select(Series).where(Series.kind == SeriesKind.study_group))
        event = session.scalar(
            sa.select(Event)
            .where(Event.series_id == series.id, Event.ends_at >= now)
            .order_by(Event.starts_at)
        )
        from portal import plugins as plugin_host

        for name in plugins:  # series plugins (archive, attendance) for the series
            plugin_host.set_enabled(session, event, name, True, actor=None)
        have = session.scalar(sa.select(sa.func.count()).where(Talk.event_id == event.id))
        speakers = _people(max(0, talks - have), "speaker")
        session.add_all(speakers)
        session.flush()
        for i, speaker in enumerate(speakers, start=have + 1):
            session.add(
                Talk(
                    event_id=event.id,
                    speaker_id=speaker.id,
                    position=i,
                    language="ja",
                    title=BilingualText(
                        ja=f"ニオブの新しい用途 {i}(架空の講演)",
                        en=f"New uses of niobium {i} (fictional talk)",
                    ),
                    starts_at=event.starts_at + timedelta(minutes=10 + 50 * (i - 1)),
                    ends_at=event.starts_at + timedelta(minutes=55 + 50 * (i - 1)),
                )
            )
        session.flush()
        _programme(session, event)
        categories = list(
            session.scalars(
                sa.select(FeeCategory)
                .where(FeeCategory.event_id == event.id)
                .order_by(FeeCategory.position)
            )
        )
        if not categories:  # the demo gives its fee categories; older demos did not
            categories = [
                FeeCategory(
                    event_id=event.id,
                    code="member",
                    name=BilingualText(ja="法人会員", en="Corporate member"),
                    price_minor=0,
                    requires_membership=True,
                    position=1,
                ),
                FeeCategory(
                    event_id=event.id,
                    code="non_member",
                    name=BilingualText(ja="一般", en="Non-member"),
                    price_minor=5000,
                    early_bird_price_minor=4000,
                    early_bird_until=now + timedelta(days=20),
                    position=2,
                ),
                FeeCategory(
                    event_id=event.id,
                    code="student",
                    name=BilingualText(ja="学生", en="Student"),
                    price_minor=0,
                    position=3,
                ),
            ]
            session.add_all(categories)
        people = _people(registrations, "attendee")
        session.add_all(people)
        session.flush()
        onsite_seats = event.capacity_onsite or registrations
        for i, person in enumerate(people):
            category = categories[i % len(categories)]
            mode = AttendanceMode.onsite if i < min(onsite_seats, registrations * 2 // 3) else None
            mode = mode or (
                AttendanceMode.online
                if AttendanceMode.online in event.attendance_modes
                else AttendanceMode.onsite
            )
            session.add(
                Registration(
                    event_id=event.id,
                    person_id=person.id,
                    attendance_mode=mode,
                    fee_category_id=category.id,
                    state=RegistrationState.confirmed,
                    price_lines=[
                        {
                            "code": f"fee:{category.code}",
                            "label": category.name.as_dict(),
                            "amount_minor": category.price_minor,
                            "currency": "JPY",
                        }
                    ],
                    total_minor=category.price_minor,
                    currency="JPY",
                    privacy_accepted_at=now,
                )
            )
        past = _fill_past_events(session, series, past_events)
        session.commit()
        email, password = next((e, p) for e, p, role, *_ in DEMO_ACCOUNTS if role == "member")
        return PagesData(
            event_slug=event.slug,
            series_slug=series.slug,
            email=email,
            password=password,
            registrations=registrations,
            past_events=past,
        )
