"""A realistic accumulated history, in bulk: 20 years of a study group, scaled 1×, 10×, 100×.

At 1× (``scale=1``) the history holds 100 past meetings, 20,000 registrations, 2,000 people
(80% with an account, half of them at a member company's email domain), 400 speakers (profile
with search keys and an affiliation), 500 talks, 300 abstracts (an author, two review
assignments and two reviews each), 2,000 mails (sent), 200 archive files with 2,000 access-log
entries, 2,000 documents (receipts), 50 member companies with one domain and a membership for
the current fiscal year, 2,000 payments, and the attendance figures of every past meeting.

One upcoming meeting (``history-current``) does not grow with the scale: 300 registrations
(fewer only when there are fewer people) in three fee categories, 4 talks, 20 abstracts under
review and the plugins calendar, archive, attendance, abstracts, membership and
stripe_payments. One person (``HistoryData.download_person_id``) has a registration (and a
payment) at up to 50 past meetings: the personal-data download. An administrator account
(``HistoryData.admin_email``) opens the organiser's pages.

Rows are written with core ``insert()`` executemany in chunks, with ids chosen here (then
PostgreSQL's sequences are moved past them), so 100× takes minutes, not hours:

    .venv/bin/python bench/history.py --scale 10 --url sqlite:////tmp/history-10.db
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from portal.accounts import search as people_search
from portal.accounts.models import Person, Sector, User, email_domain
from portal.audit import AuditEntry
from portal.documents.models import Document, DocumentKind
from portal.events.models import (
    AttendanceMode,
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
from portal.mail.models import OutboxEmail
from portal.models import load_all_models
from portal.registration.models import FeeCategory, Registration, RegistrationState
from portal.speakers import search
from portal.speakers.models import Affiliation, SpeakerProfile

ADMIN_EMAIL = "history-organiser@example.org"
ADMIN_PASSWORD = "history-organiser-password"
SERIES_SLUG = "history-study-group"
CURRENT_SLUG = "history-current"
CURRENT_PLUGINS = (
    "calendar",
    "archive",
    "attendance",
    "abstracts",
    "membership",
    "stripe_payments",
)
PAST_PLUGINS = ("archive", "attendance", "abstracts", "membership")
SERIES_PLUGINS = ("archive", "attendance", "membership")  # switched on for the whole series
CHUNK = 5000
TZ = ZoneInfo("Asia/Tokyo")

FAMILY = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤")
FAMILY_KANA = ("さとう", "すずき", "たかはし", "たなか", "いとう", "わたなべ", "やまもと")
GIVEN = ("健", "優子", "誠", "直美", "大輔", "恵", "浩二", "陽子", "翔", "由美")
GIVEN_KANA = ("けん", "ゆうこ", "まこと", "なおみ", "だいすけ", "めぐみ", "こうじ")
ROMAN_FAMILY = ("Sato", "Suzuki", "Takahashi", "Tanaka", "Ito", "Watanabe", "Yamamoto")
ROMAN_GIVEN = ("Ken", "Yuko", "Makoto", "Naomi", "Daisuke", "Megumi", "Koji", "Yoko")
SECTORS = (Sector.company, Sector.company, Sector.university, Sector.government_other)


@dataclass(frozen=True)
class Sizes:
    past_events: int
    people: int
    registrations_per_event: int
    speakers: int
    talks_per_event: int
    abstracts_per_event: int
    mails: int
    archive_files: int
    access_log_per_file: int
    documents: int
    companies: int
    payments: int
    current_registrations: int = 300
    current_abstracts: int = 20

    @classmethod
    def at(cls, scale: float) -> Sizes:
        def n(base: int, least: int = 1) -> int:
            return max(least, round(base * scale))

        people = n(2000, 20)
        return cls(
            past_events=n(100),
            people=people,
            registrations_per_event=min(200, people),
            speakers=min(n(400), people),
            talks_per_event=5,
            abstracts_per_event=3,
            mails=n(2000),
            archive_files=n(200),
            access_log_per_file=10,
            documents=n(2000),
            companies=n(50, 2),
            payments=n(2000),
            current_registrations=min(300, people),
        )


@dataclass
class HistoryData:
    scale: float
    series_id: int
    series_slug: str
    event_id: int
    event_slug: str
    admin_id: int
    admin_email: str
    admin_password: str
    download_person_id: int
    download_user_id: int
    counts: dict


class _Ids:
    """The next free id of each table (ids are chosen here so rows can point at each other)."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.next: dict[str, int] = {}

    def take(self, table: sa.Table, n: int) -> int:
        if table.name not in self.next:
            top = self.conn.scalar(sa.select(sa.func.max(table.c.id))) or 0
            self.next[table.name] = top + 1
        first = self.next[table.name]
        self.next[table.name] = first + n
        return first


def _insert(conn: sa.Connection, table: sa.Table, rows) -> int:
    """executemany of ``rows`` (an iterable of dicts) in chunks; returns how many."""
    done = 0
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(table.insert(), chunk)
            done += len(chunk)
            chunk = []
    if chunk:
        conn.execute(table.insert(), chunk)
        done += len(chunk)
    return done


def _fix_sequences(conn: sa.Connection, tables: list[sa.Table]) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        if "id" not in table.c or not isinstance(table.c.id.type, sa.Integer):
            continue
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {table.name}), 1))"
            )
        )


def _fiscal_year(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def _meeting_start(number: int, past_events: int, now: datetime) -> datetime:
    """Past meetings spread evenly over the 20 years before now (the last one 30 days ago)."""
    span = timedelta(days=365 * 20)
    step = span / max(1, past_events)
    day = (now - timedelta(days=30) - step * (past_events - number)).astimezone(TZ)
    return day.replace(hour=14, minute=30, second=0, microsecond=0)


def build_history(
    engine: sa.Engine, scale: float = 1.0, *, password_hash: str | None = None, log=None
) -> HistoryData:
    """Write the history at ``scale`` into ``engine``'s database (the schema must exist)."""
    load_all_models()
    sizes = Sizes.at(scale)
    say = log or (lambda *_: None)
    if password_hash is None:
        from portal.accounts.passwords import hash_password

        password_hash = hash_password(ADMIN_PASSWORD)
    now = datetime.now(UTC).replace(microsecond=0)
    counts: dict[str, int] = {}
    t = {name: model.__table__ for name, model in _models().items()}
    with engine.begin() as conn:
        ids = _Ids(conn)
        started = time.monotonic()

        # -- the series and its meetings -------------------------------------------------
        series_id = ids.take(t["series"], 1)
        _insert(
            conn,
            t["series"],
            [
                {
                    "id": series_id,
                    "slug": SERIES_SLUG,
                    "kind": SeriesKind.study_group,
                    "name": BilingualText(ja="レアメタル研究会(履歴)", en="Rare Metal Study Group"),
                    "description": BilingualText(),
                    "default_language": "ja",
                    "currency": "JPY",
                    "timezone": "Asia/Tokyo",
                    "created_at": now,
                }
            ],
        )
        E = sizes.past_events
        first_event = ids.take(t["events"], E + 1)
        past_ids = list(range(first_event, first_event + E))
        current_id = first_event + E
        starts = {}

        def event_rows():
            for k, event_id in enumerate(past_ids, start=1):
                start = _meeting_start(k, E, now)
                starts[event_id] = start
                yield {
                    "id": event_id,
                    "series_id": series_id,
                    "number": k,
                    "slug": f"history-{k}",
                    "title": BilingualText(
                        ja=f"第{k}回 レアメタル研究会", en=f"Rare Metal Study Group, meeting {k}"
                    ),
                    "description": BilingualText(),
                    "starts_at": start,
                    "ends_at": start + timedelta(hours=3, minutes=30),
                    "timezone": "Asia/Tokyo",
                    "venue": BilingualText(ja="駒場", en="Komaba"),
                    "format": EventFormat.hybrid if k % 3 == 0 else EventFormat.onsite,
                    "capacity_onsite": 280,
                    "capacity_online": 500 if k % 3 == 0 else None,
                    "status": EventStatus.closed,
                    "created_at": start - timedelta(days=60),
                }
            start = (now + timedelta(days=30)).astimezone(TZ).replace(hour=14, minute=30)
            start = start.replace(second=0, microsecond=0)
            starts[current_id] = start
            yield {
                "id": current_id,
                "series_id": series_id,
                "number": E + 1,
                "slug": CURRENT_SLUG,
                "title": BilingualText(
                    ja=f"第{E + 1}回 レアメタル研究会",
                    en=f"Rare Metal Study Group, meeting {E + 1}",
                ),
                "description": BilingualText(),
                "starts_at": start,
                "ends_at": start + timedelta(hours=3, minutes=30),
                "timezone": "Asia/Tokyo",
                "venue": BilingualText(ja="駒場", en="Komaba"),
                "format": EventFormat.hybrid,
                "capacity_onsite": 280,
                "capacity_online": 1000,
                "status": EventStatus.open,
                "created_at": now - timedelta(days=10),
            }

        counts["events"] = _insert(conn, t["events"], event_rows())
        plugin_rows = [(e, p) for e in past_ids for p in PAST_PLUGINS if p not in SERIES_PLUGINS]
        plugin_rows += [(current_id, p) for p in CURRENT_PLUGINS if p not in SERIES_PLUGINS]
        series_first = ids.take(t["series_plugins"], len(SERIES_PLUGINS))
        _insert(
            conn,
            t["series_plugins"],
            (
                {
                    "id": series_first + i,
                    "series_id": series_id,
                    "plugin": p,
                    "enabled": True,
                    "settings": {},
                    "updated_at": now,
                }
                for i, p in enumerate(SERIES_PLUGINS)
            ),
        )
        first = ids.take(t["event_plugins"], len(plugin_rows))
        _insert(
            conn,
            t["event_plugins"],
            (
                {
                    "id": first + i,
                    "event_id": e,
                    "plugin": p,
                    "enabled": True,
                    "settings": {},
                    "updated_at": now,
                }
                for i, (e, p) in enumerate(plugin_rows)
            ),
        )
        fee_first = ids.take(t["fee_categories"], 3)
        fees = [
            ("member", "法人会員", "Corporate member", 0, True),
            ("general", "一般", "General", 5000, False),
            ("student", "学生", "Student", 0, False),
        ]
        _insert(
            conn,
            t["fee_categories"],
            (
                {
                    "id": fee_first + i,
                    "event_id": current_id,
                    "code": code,
                    "name": BilingualText(ja=ja, en=en),
                    "price_minor": price,
                    "requires_membership": member,
                    "is_active": True,
                    "position": i + 1,
                }
                for i, (code, ja, en, price, member) in enumerate(fees)
            ),
        )
        say(f"  events: {counts['events']} ({time.monotonic() - started:.1f} s)")

        # -- member companies ----------------------------------------------------------
        C = sizes.companies
        company_first = ids.take(t["member_companies"], C)
        domains = [f"c{j}.example.co.jp" for j in range(C)]
        year = _fiscal_year(now.astimezone(TZ).date())
        _insert(
            conn,
            t["member_companies"],
            (
                {
                    "id": company_first + j,
                    "series_id": series_id,
                    "name": BilingualText(ja=f"架空金属株式会社 {j}", en=f"Fictional Metals {j}"),
                    "contact_name": f"担当 {j}",
                    "contact_email": f"contact@{domains[j]}",
                    "billing_address": "東京都",
                    "language": "ja",
                    "created_at": now,
                }
                for j in range(C)
            ),
        )
        first = ids.take(t["member_company_domains"], C)
        _insert(
            conn,
            t["member_company_domains"],
            (
                {
                    "id": first + j,
                    "company_id": company_first + j,
                    "series_id": series_id,
                    "domain": domains[j],
                }
                for j in range(C)
            ),
        )
        first = ids.take(t["memberships"], C)
        _insert(
            conn,
            t["memberships"],
            (
                {
                    "id": first + j,
                    "company_id": company_first + j,
                    "fiscal_year": year,
                    "tier": BilingualText(ja="一口", en="One unit"),
                    "amount_minor": 100000,
                    "currency": "JPY",
                    "state": "paid" if j % 4 else "unpaid",
                    "created_at": now,
                }
                for j in range(C)
            ),
        )
        counts["companies"] = C

        # -- people and accounts ---------------------------------------------------------
        P = sizes.people
        person_first = ids.take(t["people"], P + 1)
        person_ids = list(range(person_first, person_first + P))
        admin_person = person_first + P

        def email(i: int) -> str:
            if i % 2 == 0:
                return f"p{i}@{domains[(i // 2) % C]}"
            return f"p{i}@example.org"

        def keyed(row: dict) -> dict:
            """The folded search key, as the model's flush listener would set it."""
            row["search_key"] = people_search.search_key(SimpleNamespace(**row))
            return row

        def person_row(i: int, person_id: int) -> dict:
            return {
                "id": person_id,
                "family_name": FAMILY[i % len(FAMILY)],
                "given_name": GIVEN[(i // len(FAMILY)) % len(GIVEN)],
                "family_name_kana": FAMILY_KANA[i % len(FAMILY_KANA)],
                "given_name_kana": GIVEN_KANA[(i // 7) % len(GIVEN_KANA)],
                "romanized_name": f"{ROMAN_GIVEN[i % len(ROMAN_GIVEN)]} "
                f"{ROMAN_FAMILY[i % len(ROMAN_FAMILY)]} {i}",
                "email": email(i),
                "affiliation": f"架空金属株式会社 {i % 37}",
                "sector": SECTORS[i % len(SECTORS)],
                "country": "JP",
                "preferred_language": "ja" if i % 5 else "en",
                "created_at": now - timedelta(days=i % 7000),
            }

        def people_rows():
            for i, person_id in enumerate(person_ids):
                yield keyed(person_row(i, person_id))
            admin = person_row(P, admin_person)
            admin["email"] = ADMIN_EMAIL
            yield keyed(admin)

        counts["people"] = _insert(conn, t["people"], people_rows())
        with_account = [i for i in range(P) if i % 5 != 4]
        user_first = ids.take(t["users"], len(with_account) + 1)
        user_of = {person_ids[i]: user_first + k for k, i in enumerate(with_account)}
        admin_user = user_first + len(with_account)

        def user_rows():
            for k, i in enumerate(with_account):
                yield {
                    "id": user_first + k,
                    "person_id": person_ids[i],
                    "email": email(i),
                    "email_domain": email_domain(email(i)),
                    "password_hash": password_hash,
                    "email_verified_at": now - timedelta(days=i % 3000),
                    "is_admin": False,
                    "password_changed_at": now - timedelta(days=400),
                    "created_at": now - timedelta(days=i % 3000),
                }
            yield {
                "id": admin_user,
                "person_id": admin_person,
                "email": ADMIN_EMAIL,
                "email_domain": email_domain(ADMIN_EMAIL),
                "password_hash": password_hash,
                "email_verified_at": now,
                "is_admin": True,
                "password_changed_at": now - timedelta(days=1),
                "created_at": now,
            }

        counts["users"] = _insert(conn, t["users"], user_rows())
        say(f"  people: {P} ({time.monotonic() - started:.1f} s)")

        # -- speakers: profile (with search keys) and one affiliation ----------------------
        S = sizes.speakers
        speaker_ids = person_ids[:S]
        profile_first = ids.take(t["speaker_profiles"], S)
        affiliation_first = ids.take(t["speaker_affiliations"], S)

        def affiliation_rows():
            for k, person_id in enumerate(speaker_ids):
                yield {
                    "id": affiliation_first + k,
                    "person_id": person_id,
                    "organisation": BilingualText(
                        ja=f"架空大学 {k % 60}", en=f"Fictional University {k % 60}"
                    ),
                    "position": BilingualText(ja="教授", en="Professor"),
                    "started_on": date(2005 + k % 15, 4, 1),
                    "ended_on": None,
                    "created_at": now,
                }

        def profile_rows():
            for k, person_id in enumerate(speaker_ids):
                person = SimpleNamespace(**person_row(k, person_id))
                profile = SimpleNamespace(
                    publish_consent=k % 3 != 0,
                    **dict.fromkeys(
                        (
                            "search_key",
                            "public_search_key",
                            "sort_kana",
                            "sort_roman",
                            "name_key",
                            "kana_key",
                            "roman_key",
                            "email_key",
                            "reading_key",
                        )
                    ),
                )
                organisation = BilingualText(
                    ja=f"架空大学 {k % 60}", en=f"Fictional University {k % 60}"
                )
                search.apply_keys(profile, person, [SimpleNamespace(organisation=organisation)])
                row = {
                    "id": profile_first + k,
                    "person_id": person_id,
                    "title": BilingualText(ja="教授", en="Prof."),
                    "position": BilingualText(ja="教授", en="Professor"),
                    "biography": BilingualText(
                        ja="レアメタルの研究に従事。" * 8,
                        en="Works on rare metals and their recycling. " * 8,
                    ),
                    "self_introduction": BilingualText(),
                    "links": [],
                    "publish_consent": profile.publish_consent,
                    "consent_changed_at": now if profile.publish_consent else None,
                    "merged_into_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
                row.update(
                    {
                        name: getattr(profile, name)
                        for name in (
                            "search_key",
                            "public_search_key",
                            "sort_kana",
                            "sort_roman",
                            "name_key",
                            "kana_key",
                            "roman_key",
                            "email_key",
                            "reading_key",
                        )
                    }
                )
                yield row

        counts["speakers"] = _insert(conn, t["speaker_profiles"], profile_rows())
        _insert(conn, t["speaker_affiliations"], affiliation_rows())

        # -- talks -----------------------------------------------------------------------
        T = sizes.talks_per_event
        talk_events = [(e, pos) for e in past_ids for pos in range(1, T + 1)]
        talk_events += [(current_id, pos) for pos in range(1, 5)]
        talk_first = ids.take(t["talks"], len(talk_events))
        talk_ids: dict[int, list[int]] = {}

        def talk_rows():
            for n, (event_id, pos) in enumerate(talk_events):
                talk_ids.setdefault(event_id, []).append(talk_first + n)
                start = starts[event_id] + timedelta(minutes=10 + 40 * (pos - 1))
                yield {
                    "id": talk_first + n,
                    "event_id": event_id,
                    "speaker_id": speaker_ids[n % S],
                    "title": BilingualText(
                        ja=f"ニオブの新しい用途 {n}(架空の講演)",
                        en=f"New uses of niobium {n} (fictional talk)",
                    ),
                    "abstract": BilingualText(ja="概要。" * 20, en="Abstract. " * 20),
                    "self_introduction": BilingualText(),
                    "language": "ja",
                    "position": pos,
                    "starts_at": start,
                    "ends_at": start + timedelta(minutes=35),
                }

        counts["talks"] = _insert(conn, t["talks"], talk_rows())
        say(f"  speakers and talks ({time.monotonic() - started:.1f} s)")

        # -- registrations ---------------------------------------------------------------
        R = sizes.registrations_per_event
        download_person = person_ids[1]  # an account (index 1 is not a multiple of 5 minus 1)
        reg_ids: list[tuple[int, int, int]] = []  # (registration id, event id, person id)

        def registration_plan():
            for k, event_id in enumerate(past_ids):
                offset = (k * 37) % P
                chosen = [person_ids[(offset + j) % P] for j in range(R)]
                if k < 50 and download_person not in chosen:
                    chosen[-1] = download_person
                for j, person_id in enumerate(chosen):
                    yield event_id, person_id, j
            for j in range(sizes.current_registrations):
                # Every seventh person (distinct while 7 does not divide P), else the first.
                yield current_id, person_ids[(j * 7) % P if P % 7 else j], j

        plan = list(registration_plan())
        reg_first = ids.take(t["registrations"], len(plan))

        def registration_rows():
            for n, (event_id, person_id, j) in enumerate(plan):
                reg_id = reg_first + n
                reg_ids.append((reg_id, event_id, person_id))
                current = event_id == current_id
                if current:
                    # Every tenth waits for a seat (some do at every scale).
                    state = (
                        RegistrationState.waitlisted if j % 10 == 9 else RegistrationState.confirmed
                    )
                    fee = fee_first + j % 3
                    price = fees[j % 3][3]
                else:
                    state = (
                        RegistrationState.cancelled if j % 10 == 9 else RegistrationState.attended
                    )
                    fee = None
                    price = 5000 if j % 3 == 1 else 0
                created = starts[event_id] - timedelta(days=20, minutes=j)
                yield {
                    "id": reg_id,
                    "event_id": event_id,
                    "person_id": person_id,
                    "user_id": user_of.get(person_id),
                    "attendance_mode": AttendanceMode.online
                    if j % 4 == 3
                    else AttendanceMode.onsite,
                    "fee_category_id": fee,
                    "state": state,
                    "answers": {},
                    "price_lines": [
                        {
                            "code": "fee:general" if price else "fee:member",
                            "label": {"ja": "一般", "en": "General"},
                            "amount_minor": price,
                            "currency": "JPY",
                        }
                    ],
                    "total_minor": price,
                    "currency": "JPY",
                    "waitlisted_at": created if state == RegistrationState.waitlisted else None,
                    "privacy_accepted_at": created,
                    "created_at": created,
                    "updated_at": created,
                    "checked_in_at": None if current or state.value == "cancelled" else created,
                }

        counts["registrations"] = _insert(conn, t["registrations"], registration_rows())
        say(f"  registrations: {counts['registrations']} ({time.monotonic() - started:.1f} s)")

        # -- payments and documents (receipts) -------------------------------------------
        paid = [r for r in reg_ids if r[1] != current_id]
        downloads = [r for r in paid if r[2] == download_person]
        others = [r for r in paid if r[2] != download_person]
        step = max(1, len(others) // max(1, sizes.payments - len(downloads)))
        pay_regs = downloads + others[::step][: max(0, sizes.payments - len(downloads))]
        pay_first = ids.take(t["payments"], len(pay_regs) + 2)
        doc_first = ids.take(t["documents"], sizes.documents)
        receipt_of = {
            pay_first + n: doc_first + n for n in range(min(len(pay_regs), sizes.documents))
        }

        def payment_rows():
            for n, (reg_id, event_id, person_id) in enumerate(pay_regs):
                at = starts[event_id] - timedelta(days=15)
                yield {
                    "id": pay_first + n,
                    "registration_id": reg_id,
                    "event_id": event_id,
                    "person_id": person_id,
                    "method": "card",
                    "state": "succeeded",
                    "amount_minor": 5000,
                    "currency": "JPY",
                    "received_minor": 5000,
                    "received_currency": "JPY",
                    "refunded_minor": 0,
                    "idempotency_key": f"history-{pay_first + n}",
                    "request_params": {},
                    "language": "ja",
                    "provider_session_id": f"cs_history_{pay_first + n}",
                    "provider_payment_id": f"pi_history_{pay_first + n}",
                    "provider_data": {},
                    "flag_detail": {},
                    "receipt_id": receipt_of.get(pay_first + n),
                    "note": "",
                    "created_at": at,
                    "updated_at": at,
                    "paid_at": at,
                }

        doc_plan = [(pay_regs[n] if n < len(pay_regs) else None) for n in range(sizes.documents)]

        def document_rows():
            for n, reg in enumerate(doc_plan):
                at = starts[reg[1]] - timedelta(days=15) if reg else now - timedelta(days=n)
                yield {
                    "id": doc_first + n,
                    "series_id": series_id,
                    "kind": DocumentKind.receipt,
                    "year": at.astimezone(TZ).year,  # numbers are unique per kind and year
                    "number": n + 1,
                    "issued_at": at,
                    "language": "ja",
                    "recipient_name": "佐藤 健",
                    "recipient_company": "",
                    "recipient_address": "",
                    "owner_person_id": reg[2] if reg else None,
                    "purpose": "参加費",
                    "lines": [{"label": "参加費", "amount_minor": 5000}],
                    "currency": "JPY",
                    "total_minor": 5000,
                    "tax_rate": 10,
                    "tax_minor": 454,
                    "paid_at": at,
                    "issuer": {},
                    "subject_type": "payment",
                    "subject_id": pay_first + n if reg else 0,
                    "is_cancellation": False,
                }

        counts["documents"] = _insert(conn, t["documents"], document_rows())
        counts["payments"] = _insert(conn, t["payments"], payment_rows())
        say(f"  payments and documents ({time.monotonic() - started:.1f} s)")

        # -- abstracts, authors, review assignments and reviews -----------------------------
        A = sizes.abstracts_per_event
        abstract_plan = [(e, a) for e in past_ids for a in range(A)]
        abstract_plan += [(current_id, a) for a in range(sizes.current_abstracts)]
        abs_first = ids.take(t["abstracts"], len(abstract_plan))
        author_first = ids.take(t["abstract_authors"], len(abstract_plan))
        assign_first = ids.take(t["abstract_review_assignments"], 2 * len(abstract_plan))
        review_first = ids.take(t["abstract_reviews"], 2 * len(abstract_plan))
        # The reviewer pool grows with the abstracts (30 at 1×): about 20 reviews each at any
        # scale, so the data download's person (a reviewer) keeps the same data at 100×.
        reviewers = speaker_ids[: max(2, min(S, round(30 * scale)))]

        def abstract_rows():
            for n, (event_id, a) in enumerate(abstract_plan):
                current = event_id == current_id
                state = "submitted" if current else ("accepted_oral", "rejected")[a % 2]
                at = starts[event_id] - timedelta(days=90)
                yield {
                    "id": abs_first + n,
                    "event_id": event_id,
                    "submitter_id": person_ids[(n * 11) % P],
                    "title": BilingualText(ja=f"要旨 {n}", en=f"Abstract {n}"),
                    "body": BilingualText(ja="本文。" * 50, en="Body. " * 50),
                    "language": "en",
                    "topic": ("recycling", "supply", "materials")[n % 3],
                    "presentation_type": "oral",
                    "state": state,
                    "reopened": False,
                    "decision_note": "",
                    "pdf_filename": "",
                    "created_at": at,
                    "updated_at": at,
                    "submitted_at": at,
                    "decided_at": None if current else at + timedelta(days=30),
                }

        counts["abstracts"] = _insert(conn, t["abstracts"], abstract_rows())
        _insert(
            conn,
            t["abstract_authors"],
            (
                {
                    "id": author_first + n,
                    "abstract_id": abs_first + n,
                    "position": 1,
                    "person_id": person_ids[(n * 11) % P],
                    "name": f"Author {n}",
                    "affiliation": "Fictional University",
                    "email": f"author{n}@example.org",
                    "presenting": True,
                }
                for n in range(len(abstract_plan))
            ),
        )
        _insert(
            conn,
            t["abstract_review_assignments"],
            (
                {
                    "id": assign_first + 2 * n + r,
                    "abstract_id": abs_first + n,
                    "reviewer_id": reviewers[(n + r) % len(reviewers)],
                    "assigned_by_id": admin_user,
                    "assigned_at": now - timedelta(days=n % 7000),
                }
                for n in range(len(abstract_plan))
                for r in range(2)
            ),
        )
        counts["reviews"] = _insert(
            conn,
            t["abstract_reviews"],
            (
                {
                    "id": review_first + 2 * n + r,
                    "assignment_id": assign_first + 2 * n + r,
                    "scores": {"originality": 1 + (n + r) % 5, "clarity": 1 + n % 5},
                    "overall": float(1 + (n + r) % 5),
                    "comment": "",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(len(abstract_plan))
                for r in range(2)
                # Half the current event's assignments are still waiting for their review.
                if abstract_plan[n][0] != current_id or r == 0
            ),
        )
        say(f"  abstracts ({time.monotonic() - started:.1f} s)")

        # -- archive files and who opened them ---------------------------------------------
        F = sizes.archive_files
        all_talks = [tid for e in past_ids for tid in talk_ids.get(e, [])]
        item_first = ids.take(t["archive_items"], F)
        # Talk 3n: its speaker is person 3n (mod the speakers), so the speakers with slides have
        # every family name. (Talk 7n gave them three of the seven: the names cycle by 7.)
        item_talk = [all_talks[(n * 3) % len(all_talks)] for n in range(F)]
        _insert(
            conn,
            t["archive_items"],
            (
                {
                    "id": item_first + n,
                    "talk_id": item_talk[n],
                    "kind": "file",
                    "title": BilingualText(ja=f"講演資料 {n}", en=f"Slides {n}"),
                    "file_type": "pdf",
                    "stored_name": f"history-{item_first + n}.pdf",
                    "original_name": f"slides-{n}.pdf",
                    "size": 1_500_000,
                    "text_key": "ニオブ タンタル リサイクル " * 20,
                    "uploaded_by_id": admin_user,
                    "created_at": now - timedelta(days=n % 7000),
                }
                for n in range(F)
            ),
        )
        L = F * sizes.access_log_per_file
        log_first = ids.take(t["archive_access_log"], L)
        account_ids = list(user_of.values())
        counts["archive_files"] = F
        counts["access_log"] = _insert(
            conn,
            t["archive_access_log"],
            (
                {
                    "id": log_first + n,
                    "at": now - timedelta(minutes=37 * n),
                    "series_id": series_id,
                    "item_id": item_first + n % F,
                    "talk_id": item_talk[n % F],
                    "user_id": account_ids[n % len(account_ids)],
                    "allowed": n % 9 != 0,
                    "reason": "member" if n % 9 else "not_member",
                    "item_title": f"Slides {n % F}",
                }
                for n in range(L)
            ),
        )

        # -- mails (all sent) and audit entries ------------------------------------------
        M = sizes.mails
        mail_first = ids.take(t["outbox_emails"], M)
        counts["mails"] = _insert(
            conn,
            t["outbox_emails"],
            (
                {
                    "id": mail_first + n,
                    "to_address": email(n % P),
                    "language": "ja",
                    "subject": f"参加登録の確認 {n}",
                    "body_text": "ご登録ありがとうございます。\n" * 20,
                    "body_html": "<p>ご登録ありがとうございます。</p>" * 20,
                    "template": "registration_confirmed",
                    "message_id": f"<history-{mail_first + n}@example.org>",
                    "reply_to": "",
                    "headers": {},
                    "created_at": now - timedelta(minutes=n),
                    "attempts": 1,
                    "next_attempt_at": now - timedelta(minutes=n),
                    "sent_at": now - timedelta(minutes=n) if n % 100 else None,
                    "failed_at": None if n % 100 else now - timedelta(minutes=n),
                    "last_error": "" if n % 100 else "550 no such user",
                }
                for n in range(M)
            ),
        )
        audit_first = ids.take(t["audit_entries"], len(reg_ids))
        _insert(
            conn,
            t["audit_entries"],
            (
                {
                    "id": audit_first + n,
                    "at": now - timedelta(minutes=n),
                    "actor_id": user_of.get(person_id),
                    "subject_type": "registration",
                    "subject_id": reg_id,
                    "action": "registered",
                    "data": {},
                }
                for n, (reg_id, _event, person_id) in enumerate(reg_ids)
            ),
        )

        # -- attendance figures of every past meeting ----------------------------------------
        att_first = ids.take(t["meeting_attendance"], E)
        _insert(
            conn,
            t["meeting_attendance"],
            (
                {
                    "id": att_first + k,
                    "event_id": event_id,
                    "registered": R,
                    "participants": R * 9 // 10,
                    "company": R * 5 // 10,
                    "university": R * 3 // 10,
                    "government_other": R - R * 5 // 10 - R * 3 // 10 - R // 10,
                    "online_participants": None,
                    "onsite_participants": None,
                    "cancelled": False,
                    "note": "",
                    "source": "import",
                    "imported_at": now,
                    "updated_at": now,
                }
                for k, event_id in enumerate(past_ids)
            ),
        )
        _fix_sequences(conn, list(t.values()))
        say(f"  done ({time.monotonic() - started:.1f} s)")

    return HistoryData(
        scale=scale,
        series_id=series_id,
        series_slug=SERIES_SLUG,
        event_id=current_id,
        event_slug=CURRENT_SLUG,
        admin_id=admin_user,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        download_person_id=download_person,
        download_user_id=user_of[download_person],
        counts=counts,
    )


def history_data_of(engine: sa.Engine) -> HistoryData:
    """The ``HistoryData`` of a database ``build_history`` filled before (to measure it again
    without building it again: ``bench/sweep.py --reuse``)."""
    with engine.connect() as conn:

        def one(sql: str, **params):
            return conn.execute(sa.text(sql), params).scalar_one()

        series_id = one("SELECT id FROM series WHERE slug = :s", s=SERIES_SLUG)
        event_id = one("SELECT id FROM events WHERE slug = :s", s=CURRENT_SLUG)
        admin = conn.execute(
            sa.text("SELECT id, person_id FROM users WHERE email = :e"), {"e": ADMIN_EMAIL}
        ).one()
        # The builder's people are consecutive ids; the second is the data download's.
        download_person = one("SELECT min(id) FROM people") + 1
        download_user = one("SELECT id FROM users WHERE person_id = :p", p=download_person)
        counts = {
            "events": one("SELECT count(*) FROM events"),
            "people": one("SELECT count(*) FROM people"),
        }
    scale = round((counts["events"] - 1) / 100, 2)
    return HistoryData(
        scale=scale,
        series_id=series_id,
        series_slug=SERIES_SLUG,
        event_id=event_id,
        event_slug=CURRENT_SLUG,
        admin_id=admin.id,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        download_person_id=download_person,
        download_user_id=download_user,
        counts=counts,
    )


def _models() -> dict:
    from plugins.abstracts.models import Abstract, AbstractAuthor, Review, ReviewAssignment
    from plugins.archive.models import ArchiveAccessLog, ArchiveItem
    from plugins.attendance.models import MeetingAttendance
    from plugins.membership.models import CompanyDomain, MemberCompany, Membership
    from portal.payments.models import Payment

    models = (
        Series,
        Event,
        EventPlugin,
        SeriesPlugin,
        FeeCategory,
        MemberCompany,
        CompanyDomain,
        Membership,
        Person,
        User,
        SpeakerProfile,
        Affiliation,
        Talk,
        Registration,
        Payment,
        Document,
        Abstract,
        AbstractAuthor,
        ReviewAssignment,
        Review,
        ArchiveItem,
        ArchiveAccessLog,
        OutboxEmail,
        AuditEntry,
        MeetingAttendance,
    )
    return {model.__tablename__: model for model in models}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build a history database (docs/performance.md)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--url", required=True, help="database URL (its schema is replaced)")
    args = parser.parse_args(argv)
    from bench.seed import create_schema

    engine = create_schema(args.url)
    started = time.monotonic()
    try:
        data = build_history(engine, args.scale, log=print)
    finally:
        engine.dispose()
    print(f"history {args.scale:g}x in {time.monotonic() - started:.1f} s: {data.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
