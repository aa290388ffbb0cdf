"""Demo data: both series, the study group's past meetings, upcoming events, sample people.

Everything is found by a natural key (slug, email) first, so loading twice changes nothing.
Sample people and talks are clearly fictional.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import plugins
from portal.accounts.models import Person, Role, Sector, User, UserRole
from portal.accounts.passwords import hash_password
from portal.db import utcnow
from portal.events.models import (
    Event,
    EventFormat,
    EventPlugin,
    EventStatus,
    Series,
    SeriesKind,
    SeriesPlugin,
    Talk,
)
from portal.i18n import BilingualText
from portal.localtime import at

# The study group's historical figures, kept in the repository (shipped as package data).
ATTENDANCE_CSV = (
    Path(__file__).resolve().parent.parent / "plugins/attendance/data/study_group_attendance.csv"
)

DEMO_ACCOUNTS = (
    # email, password, role, family, given, romanised
    ("admin@example.org", "demo-admin-pass", "administrator", "管理", "花子", "Hanako Kanri"),
    ("organiser@example.org", "demo-organiser-pass", "organiser", "幹事", "一郎", "Ichiro Kanji"),
    ("member@fictional-metals.example", "demo-member-pass", "member", "会員", "次郎", "Jiro Kaiin"),
)

SAMPLE_SPEAKERS = (
    # family, given, family kana, given kana, romanised, affiliation, sector, country, lang
    (
        "見本",
        "太郎",
        "みほん",
        "たろう",
        "Taro Mihon",
        "架空金属株式会社",
        Sector.company,
        "JP",
        "ja",
    ),
    (
        "試験",
        "美咲",
        "しけん",
        "みさき",
        "Misaki Shiken",
        "架空大学 材料研究所",
        Sector.university,
        "JP",
        "ja",
    ),
    (
        "Example",
        "Jane",
        "",
        "",
        "Jane Example",
        "Fictional Institute of Technology",
        Sector.university,
        "US",
        "en",
    ),
    ("Sample", "Alex", "", "", "Alex Sample", "Imaginary Metals Inc.", Sector.company, "US", "en"),
)


def _get_or_create(session: Session, model, key: dict, **values):
    obj = session.scalar(sa.select(model).filter_by(**key))
    if obj is None:
        obj = model(**key, **values)
        session.add(obj)
        session.flush()
    return obj


def _series(session: Session) -> tuple[Series, Series]:
    study = _get_or_create(
        session,
        Series,
        {"slug": "study-group"},
        kind=SeriesKind.study_group,
        name=BilingualText(ja="レアメタル研究会", en="Rare Metal Study Group"),
        description=BilingualText(
            ja="レアメタルに関する産学官の非公式な勉強会・交流会です(2002年から)。",
            en="An informal study and networking meeting on rare metals for industry, academia and government, since 2002.",
        ),
        default_language="ja",
        currency="JPY",
        timezone="Asia/Tokyo",
    )
    workshop = _get_or_create(
        session,
        Series,
        {"slug": "workshop"},
        kind=SeriesKind.workshop,
        name=BilingualText(ja="リアクティブメタル・ワークショップ", en="Reactive Metal Workshop"),
        description=BilingualText(
            ja="毎年ボストンで開かれる国際ワークショップです(2006年から)。",
            en="An international workshop held every year in Boston / Cambridge, MA, since 2006.",
        ),
        default_language="en",
        currency="USD",
        timezone="America/New_York",
    )
    return study, workshop


def _past_meetings(session: Session, study: Series) -> None:
    with ATTENDANCE_CSV.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            number = int(row["meeting_no"])
            day = datetime.strptime(row["date"], "%Y-%m-%d").date()
            fmt = row["format"]
            _get_or_create(
                session,
                Event,
                {"slug": f"study-group-{number}"},
                series_id=study.id,
                number=number,
                title=BilingualText(
                    ja=f"第{number}回 レアメタル研究会",
                    en=f"Rare Metal Study Group, meeting {number}",
                ),
                starts_at=at(day, 14, 30, study.timezone),
                ends_at=at(day, 18, 0, study.timezone),
                timezone=study.timezone,
                venue=BilingualText(
                    ja="東京大学生産技術研究所(駒場)",
                    en="Institute of Industrial Science, University of Tokyo (Komaba)",
                ),
                format=EventFormat.online if fmt == "online" else EventFormat.onsite,
                capacity_onsite=280,
                status=EventStatus.cancelled if fmt == "cancelled" else EventStatus.closed,
            )


def _people(session: Session) -> list[Person]:
    people = []
    for family, given, fk, gk, roman, affiliation, sector, country, lang in SAMPLE_SPEAKERS:
        people.append(
            _get_or_create(
                session,
                Person,
                {"romanized_name": roman, "family_name": family},
                given_name=given,
                family_name_kana=fk,
                given_name_kana=gk,
                affiliation=affiliation,
                sector=sector,
                country=country,
                preferred_language=lang,
                email=f"{roman.lower().replace(' ', '.')}@example.org",
            )
        )
    return people


def _upcoming(session: Session, study: Series, workshop: Series, people: list[Person]) -> None:
    today = utcnow().date()
    last = (
        session.scalar(sa.select(sa.func.max(Event.number)).where(Event.series_id == study.id)) or 0
    )
    existing = session.scalar(
        sa.select(Event).where(Event.slug.like("study-group-%"), Event.ends_at >= utcnow())
    )
    if existing is None:
        number = last + 1
        day = today + timedelta(days=40)
        meeting = Event(
            series_id=study.id,
            number=number,
            slug=f"study-group-{number}",
            title=BilingualText(
                ja=f"第{number}回 レアメタル研究会", en=f"Rare Metal Study Group, meeting {number}"
            ),
            description=BilingualText(
                ja="講演者による自己紹介と講演、討論のあと、意見交換会(交流会)を行います。",
                en="Speakers introduce themselves and give their talks; a discussion follows, then the exchange meeting (reception).",
            ),
            starts_at=at(day, 14, 30, study.timezone),
            ends_at=at(day, 18, 0, study.timezone),
            timezone=study.timezone,
            venue=BilingualText(
                ja="東京大学生産技術研究所 コンベンションホール",
                en="Convention Hall, Institute of Industrial Science, University of Tokyo",
            ),
            format=EventFormat.hybrid,
            capacity_onsite=270,
            capacity_online=1000,
            status=EventStatus.open,
        )
        session.add(meeting)
        session.flush()
        titles = [
            (
                "チタン製錬の新しい展開(架空の講演)",
                "New directions in titanium smelting (fictional talk)",
            ),
            ("希土類磁石のリサイクル(架空の講演)", "Recycling rare-earth magnets (fictional talk)"),
            (
                "タンタル・ニオブの供給動向(架空の講演)",
                "Supply of tantalum and niobium (fictional talk)",
            ),
        ]
        for i, (ja, en) in enumerate(titles):
            session.add(
                Talk(
                    event_id=meeting.id,
                    speaker_id=people[i % 2 if i < 2 else 3].id,
                    position=i + 1,
                    title=BilingualText(ja=ja, en=en),
                    language="ja",
                    starts_at=at(day, 14, 40 + 0, study.timezone) + timedelta(minutes=60 * i),
                    ends_at=at(day, 15, 30, study.timezone) + timedelta(minutes=60 * i),
                )
            )

    year = (today + timedelta(days=150)).year
    edition = year - 2005
    if session.scalar(sa.select(Event).where(Event.slug == f"workshop-{year}")) is None:
        day = today + timedelta(days=150)
        ws = Event(
            series_id=workshop.id,
            number=edition,
            slug=f"workshop-{year}",
            title=BilingualText(
                ja=f"第{edition}回 リアクティブメタル・ワークショップ",
                en=f"Reactive Metal Workshop {year}",
            ),
            description=BilingualText(
                ja="反応性金属の製錬・加工に関する国際ワークショップ。講演要旨を募集しています。",
                en="An international workshop on the extraction and processing of reactive metals. Abstracts are welcome.",
            ),
            starts_at=at(day, 9, 0, workshop.timezone),
            ends_at=at(day, 17, 30, workshop.timezone),
            timezone=workshop.timezone,
            venue=BilingualText(
                ja="マサチューセッツ工科大学(米国ケンブリッジ)", en="MIT, Cambridge, MA"
            ),
            format=EventFormat.onsite,
            capacity_onsite=80,
            status=EventStatus.open,
        )
        session.add(ws)
        session.flush()
        session.add(
            Talk(
                event_id=ws.id,
                speaker_id=people[2].id,
                position=1,
                language="en",
                title=BilingualText(
                    ja="溶融塩電解の基礎(架空の講演)",
                    en="Fundamentals of molten salt electrolysis (fictional talk)",
                ),
            )
        )
        session.add(
            Talk(
                event_id=ws.id,
                speaker_id=people[0].id,
                position=2,
                language="en",
                title=BilingualText(
                    ja="チタン粉末の製造(架空の講演)", en="Making titanium powder (fictional talk)"
                ),
            )
        )


def _accounts(session: Session, study: Series, workshop: Series) -> list[tuple[str, str, str]]:
    printed = []
    for email, password, role, family, given, roman in DEMO_ACCOUNTS:
        user = session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            person = Person(
                family_name=family,
                given_name=given,
                romanized_name=roman,
                email=email,
                preferred_language="ja",
                sector=Sector.university,
            )
            session.add(person)
            session.flush()
            user = User(
                person_id=person.id,
                email=email,
                password_hash=hash_password(password),
                email_verified_at=utcnow(),
                is_admin=role == "administrator",
            )
            session.add(user)
            session.flush()
            if role == "organiser":
                for series in (study, workshop):
                    session.add(UserRole(user_id=user.id, role=Role.organiser, series_id=series.id))
            if role == "member":
                session.add(UserRole(user_id=user.id, role=Role.member, series_id=study.id))
        printed.append((email, password, role))
    return printed


# Fee categories (code, ja, en, price in major units, early-bird price, requires membership)
STUDY_GROUP_FEES = (
    ("member", "法人会員", "Corporate member", 0, None, True),
    ("non_member", "一般", "Non-member", 5000, 4000, False),
    ("student", "学生", "Student", 0, None, False),
)
WORKSHOP_FEES = (
    ("regular", "一般", "Regular", 250, 200, False),
    ("student", "学生", "Student", 100, None, False),
)
STUDY_GROUP_PLUGINS = {
    "calendar": {},
    "exchange_meeting": {
        "capacity": 300,
        "price": 3000,
        "venue_ja": "生産技術研究所 食堂",
        "venue_en": "IIS cafeteria",
        "time_ja": "18:15–20:00",
        "time_en": "18:15–20:00",
    },
    "webinar": {"url": "https://webinar.example.org/j/0000000000", "passcode": "demo-0000"},
    "bank_transfer": {},
    "archive": {},
    "membership": {},
    "attendance": {"public": True},
}
WORKSHOP_PLUGINS = {
    "calendar": {},
    "stripe_payments": {},
    "bank_transfer": {},
    "abstracts": {"topics": ["Extraction", "Processing", "Recycling"]},
}


def _set_up_event(
    session: Session, event: Event, fees, plugin_settings: dict, currency: str
) -> None:
    """Fee categories and plugins of a demo event, added only where missing."""
    from portal.i18n import to_minor
    from portal.registration.models import FeeCategory

    have = set(session.scalars(sa.select(FeeCategory.code).where(FeeCategory.event_id == event.id)))
    early_until = event.starts_at - timedelta(days=14)
    for position, (code, ja, en, price, early, members_only) in enumerate(fees):
        if code in have:
            continue
        session.add(
            FeeCategory(
                event_id=event.id,
                code=code,
                name=BilingualText(ja=ja, en=en),
                position=position,
                price_minor=to_minor(price, currency),
                early_bird_price_minor=to_minor(early, currency) if early is not None else None,
                early_bird_until=early_until if early is not None else None,
                requires_membership=members_only,
            )
        )
    enabled = set(
        session.scalars(sa.select(EventPlugin.plugin).where(EventPlugin.event_id == event.id))
    )
    series_on = set(
        session.scalars(
            sa.select(SeriesPlugin.plugin).where(SeriesPlugin.series_id == event.series_id)
        )
    )
    for plugin, settings in plugin_settings.items():
        if plugins.scope(plugin) == plugins.SERIES:  # membership, archive, attendance
            if plugin not in series_on:
                session.add(
                    SeriesPlugin(
                        series_id=event.series_id, plugin=plugin, enabled=True, settings=settings
                    )
                )
                series_on.add(plugin)
        elif plugin not in enabled:
            session.add(
                EventPlugin(event_id=event.id, plugin=plugin, enabled=True, settings=settings)
            )
    session.flush()


def load_demo(session: Session) -> list[tuple[str, str, str]]:
    """Load (or complete) the demo data; returns the demo accounts to print."""
    study, workshop = _series(session)
    _past_meetings(session, study)
    people = _people(session)
    session.flush()
    _upcoming(session, study, workshop, people)
    upcoming = session.scalars(
        sa.select(Event).where(
            Event.ends_at >= utcnow(), Event.series_id.in_([study.id, workshop.id])
        )
    )
    for event in upcoming:
        if event.series_id == study.id:
            _set_up_event(session, event, STUDY_GROUP_FEES, STUDY_GROUP_PLUGINS, study.currency)
        else:
            _set_up_event(session, event, WORKSHOP_FEES, WORKSHOP_PLUGINS, workshop.currency)
    plugins.manager().hook.demo_data(session=session, study_group=study, workshop=workshop)
    accounts = _accounts(session, study, workshop)
    session.flush()
    _announcement_list(session, study, people)
    return accounts


def _announcement_list(session: Session, study: Series, people: list[Person]) -> None:
    """The sample speakers and the member account on the study group's list (confirmed from
    today: the past meetings keep Table 1's figures). Running it twice changes nothing."""
    from portal.announcements.subscriptions import request_join

    member = session.scalar(sa.select(User).where(User.email == DEMO_ACCOUNTS[2][0]))
    for person in [*people, *([member.person] if member else [])]:
        if person.email:
            request_join(
                session,
                study,
                person=person,
                language=person.preferred_language,
                source="demo",
                confirmed=True,
            )
    session.flush()
