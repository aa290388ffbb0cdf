"""Webinar (ウェビナー): who sees the link, the reminder of the day before, the attendance report.

Who sees the link and passcode (one rule, ``access``):
- the series' organisers, always (with a note from when participants see it);
- a person registered to attend ONLINE whose registration is confirmed or attended, from
  ``minutes_before`` minutes before the start until the end of the event;
- nobody else: the link and passcode are not in their page at all.

Reminder (``remind``, CLI ``portal webinar remind``, run e.g. daily): for events with the
plugin on and the setting ``reminder`` on, starting between 24 and 48 hours from now, one email
per confirmed registration, in the person's language, with the date and time in the event's
zone and the link and passcode (online) or the venue (on site). Sent reminders are recorded, so
running it again sends nothing new.

Attendance report (``parse_report`` then ``import_report``): a Zoom-style CSV (name, email,
join time, leave time, duration in minutes; UTF-8 with or without BOM, or Shift_JIS; column
names in English or Japanese; a person may be listed once per time they joined). Rows are
matched to online registrations by email, case-insensitive; a confirmed one is checked in with
the registration core's ``check_in`` (state attended, history written); the minutes (the sum of
the durations listed) are recorded per registration. Rows that match nothing are reported.
Importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from plugins.webinar.models import WebinarAttendance, WebinarReminder
from portal import audit, plugins
from portal.accounts.models import Person
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import AttendanceMode, Event, EventStatus
from portal.i18n import LANGUAGES
from portal.localtime import as_utc
from portal.mail.services import queue_email
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState
from portal.registration.queries import rows_of_person
from portal.text import truthy

PLUGIN = "webinar"
VIEWING_STATES = (RegistrationState.confirmed, RegistrationState.attended)
REMIND_FROM = timedelta(hours=24)
REMIND_UNTIL = timedelta(hours=48)
MAX_REPORT_BYTES = 5 * 1024 * 1024
# -- settings and access ---------------------------------------------------------------------


@dataclass(frozen=True)
class WebinarSettings:
    url: str  # "" unless it is an http(s) address
    passcode: str
    minutes_before: int
    reminder: bool


def _minutes(value, default: int = 30) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return min(max(number, 0), 7 * 24 * 60)


def webinar_settings(event: Event) -> WebinarSettings:
    raw = plugins.settings(event, PLUGIN)
    url = str(raw.get("url") or "").strip()
    if not re.match(r"^https?://[^\s<>\"']+$", url, re.IGNORECASE):
        url = ""
    reminder = raw.get("reminder")
    return WebinarSettings(
        url=url,
        passcode=str(raw.get("passcode") or "").strip(),
        minutes_before=_minutes(raw.get("minutes_before")),
        reminder=truthy(reminder),
    )


def reveal_at(event: Event, st: WebinarSettings) -> datetime:
    """When participants start to see the link."""
    return event.starts_at - timedelta(minutes=st.minutes_before)


@dataclass(frozen=True)
class Access:
    """What a person may see of the webinar of an event, now.

    ``audience``: "organiser", "participant" (online, confirmed or attended), "unconfirmed"
    (online, not confirmed yet), "onsite" (registered on site) or "none".
    """

    audience: str
    visible: bool  # the link and passcode may be shown
    reveal_at: datetime
    ended: bool


def access(
    event: Event,
    user,
    registration: Registration | None,
    st: WebinarSettings,
    now: datetime | None = None,
) -> Access:
    now = now or utcnow()
    when = reveal_at(event, st)
    ended = event.ends_at <= now
    if getattr(user, "is_authenticated", False) and user.is_organiser_of(event.series):
        return Access("organiser", True, when, ended)
    active = registration is not None and registration.is_active
    if active and registration.attendance_mode == AttendanceMode.online:
        if registration.state in VIEWING_STATES:
            visible = when <= now and not ended and event.status != EventStatus.cancelled
            return Access("participant", visible, when, ended)
        return Access("unconfirmed", False, when, ended)
    if active:
        return Access("onsite", False, when, ended)
    return Access("none", False, when, ended)


def zone_name(value: datetime, tz: str, lang: str | None = None) -> str:
    """The zone as people say it at that moment: 日本時間 / JST, EST, EDT (portal.i18n)."""
    from portal.i18n import format_zone

    return format_zone(tz, lang, value)


# -- reminders -------------------------------------------------------------------------------


def due_events(session: Session, now: datetime) -> list[Event]:
    """Events with the plugin on, not cancelled or draft, starting in 24 to 48 hours."""
    return list(
        session.scalars(
            sa.select(Event)
            .where(
                Event.id.in_(plugins.enabled_events(PLUGIN)),
                Event.starts_at >= now + REMIND_FROM,
                Event.starts_at < now + REMIND_UNTIL,
                Event.status.in_((EventStatus.open, EventStatus.closed)),
            )
            .order_by(Event.starts_at, Event.id)
        )
    )


def remind(session: Session, *, now: datetime | None = None) -> list[WebinarReminder]:
    """Queue the reminder of the day before, once per confirmed registration."""
    now = now or utcnow()
    queued: list[WebinarReminder] = []
    for event in due_events(session, now):
        st = webinar_settings(event)
        if not st.reminder:
            continue
        registrations.lock_event(session, event)  # two runs at once: one waits, then skips
        already = (
            sa.select(WebinarReminder.id)
            .where(WebinarReminder.registration_id == Registration.id)
            .exists()
        )
        rows = session.scalars(
            sa.select(Registration)
            .where(
                Registration.event_id == event.id,
                Registration.state == RegistrationState.confirmed,
                ~already,
            )
            .options(joinedload(Registration.person))
            .order_by(Registration.id)
        ).all()
        for registration in rows:
            person = registration.person
            if person is None or not person.email:
                continue
            lang = person.preferred_language if person.preferred_language in LANGUAGES else "ja"
            online = registration.attendance_mode == AttendanceMode.online
            queue_email(
                session,
                person.email,
                "webinar/reminder",
                lang,
                event=event,
                person=person,
                registration=registration,
                online=online,
                st=st,
                reveal_at=reveal_at(event, st),
                zone=zone_name(event.starts_at, event.timezone, lang),
                url=registrations.external_url(
                    "registration.my_registration", lang_code=lang, reg_id=registration.id
                ),
            )
            reminder = WebinarReminder(
                registration_id=registration.id,
                event_id=event.id,
                attendance_mode=registration.attendance_mode,
                sent_at=now,
            )
            session.add(reminder)
            queued.append(reminder)
        if rows:
            session.flush()
            audit.record(session, None, "event", event.id, "webinar_reminders", count=len(rows))
    return queued


# -- the attendance report -------------------------------------------------------------------


class ReportError(UserError):
    """The file as a whole cannot be used; ``message`` is translated."""


def _key(text: str) -> str:
    """A column name compared loosely: NFKC, lower case, no spaces, quotes or BOM."""
    text = unicodedata.normalize("NFKC", text or "").replace("\ufeff", "")
    return re.sub(r"[\s\"'_]", "", text).lower()


COLUMNS = {
    "email": (
        "email",
        "e-mail",
        "emailaddress",
        "useremail",
        "attendeeemail",
        "メール",
        "メールアドレス",
        "ユーザーのメール",  # Zoom's Japanese reports
        "ユーザーのメールアドレス",
        "参加者のメール",
        "参加者のメールアドレス",
        "eメール",
        "ユーザーメール",
        "電子メール",
    ),
    "name": (
        "name",
        "name(originalname)",
        "username",
        "username(originalname)",
        "participant",
        "名前",
        "名前(元の名前)",
        "氏名",
        "ユーザー名",
        "ユーザー名(元の名前)",
        "名前(元の名前)",
        "参加者名",
    ),
    "join": ("jointime", "join", "参加時刻", "参加時間", "入室時刻", "入室時間"),
    "leave": ("leavetime", "leave", "退出時刻", "退出時間", "退室時刻", "退室時間"),
    "minutes": (
        "duration(minutes)",
        "durationminutes",
        "duration",
        "minutes",
        "timeinsession(minutes)",
        "期間(分)",
        "時間(分)",
        "参加時間(分)",
        "継続時間(分)",
        "セッション時間(分)",
    ),
    "attended": ("attended", "出席", "出席済み"),
}
_ALIASES = {_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases}
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NO = {"no", "いいえ", "false", "0", "欠席"}


@dataclass(frozen=True)
class ReportRow:
    line: int
    name: str
    email: str  # lower case
    minutes: int
    joined: datetime | None = None  # as written in the report (the webinar's local time)
    left: datetime | None = None


@dataclass(frozen=True)
class SkippedRow:
    line: int
    name: str
    reason: str


@dataclass
class ParsedReport:
    rows: list[ReportRow] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)


def _decode(data: bytes) -> str:
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(
            _l("The file is too large: at most %(mb)s MB.", mb=MAX_REPORT_BYTES // (1024 * 1024))
        )
    if not data.strip():
        raise ReportError(_l("The file is empty."))
    not_csv = ReportError(
        _l(
            "This file is not a CSV file. Please export the attendance report of the webinar "
            "as CSV and upload that file."
        )
    )
    if b"\x00" in data[:4096]:
        raise not_csv  # a spreadsheet, PDF or image
    for encoding in ("utf-8-sig", "cp932"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # Control and private-use characters: binary data that happened to decode.
        if any(unicodedata.category(c) in ("Cc", "Co") and c not in "\t\r\n" for c in text[:4096]):
            raise not_csv
        return text
    raise not_csv


def _time(text: str) -> datetime | None:
    text = (text or "").strip()
    for pattern in _TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _row_minutes(cells: dict) -> int | None:
    raw = (cells.get("minutes") or "").strip().replace(",", "")
    if raw:
        try:
            return max(0, round(float(raw)))
        except ValueError:
            pass
    joined, left = _time(cells.get("join", "")), _time(cells.get("leave", ""))
    if joined and left and left >= joined:
        return -(-int((left - joined).total_seconds()) // 60)  # whole minutes, rounded up
    return None


def parse_report(data: bytes) -> ParsedReport:
    """Read the report; raises ReportError for a file that cannot be used as a whole."""
    text = _decode(data)
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        raise ReportError(
            _l(
                "This file is not a CSV file. Please export the attendance report of the "
                "webinar as CSV and upload that file."
            )
        ) from None
    report = ParsedReport()
    columns: dict[str, int] | None = None
    for number, cells in enumerate(lines, start=1):
        if not any(c.strip() for c in cells):
            continue
        found = {
            _ALIASES[_key(c)]: i for i, c in reversed(list(enumerate(cells))) if _key(c) in _ALIASES
        }
        if "email" in found:
            columns = found  # a header (Zoom reports may have several sections)
            continue
        if columns is None:
            continue  # the report's preamble
        values = {name: (cells[i] if i < len(cells) else "") for name, i in columns.items()}
        name = values.get("name", "").strip()
        email = values.get("email", "").strip().lower()
        if not _EMAIL.match(email):
            report.skipped.append(SkippedRow(number, name, "no_email"))
            continue
        if values.get("attended", "").strip().lower() in _NO:
            report.skipped.append(SkippedRow(number, name, "did_not_attend"))
            continue
        minutes = _row_minutes(values)
        if minutes is None and not _time(values.get("join", "")):
            report.skipped.append(SkippedRow(number, name, "did_not_attend"))
            continue
        report.rows.append(
            ReportRow(
                number,
                name,
                email,
                minutes or 0,
                joined=_time(values.get("join", "")),
                left=_time(values.get("leave", "")),
            )
        )
    if columns is None:
        raise ReportError(
            _l(
                "The file has no email column. Please upload the attendance report with the "
                "participants' email addresses (a column named Email)."
            )
        )
    return report


@dataclass
class Attendee:
    """One email address of the report, all its rows taken together."""

    email: str
    name: str
    lines: list[int] = field(default_factory=list)
    minutes: int = 0
    sessions: int = 0
    first_joined: datetime | None = None  # local time of the report
    last_left: datetime | None = None


@dataclass(frozen=True)
class Unmatched:
    lines: tuple[int, ...]
    name: str
    email: str
    reason: str  # "no_registration", "onsite", "not_confirmed", "no_email", "did_not_attend"
    state: RegistrationState | None = None


@dataclass
class ImportResult:
    checked_in: list[Registration] = field(default_factory=list)
    already: list[Registration] = field(default_factory=list)  # attended before
    recorded: int = 0  # minutes stored or changed
    unchanged: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.checked_in or self.recorded)


def attendees(report: ParsedReport) -> list[Attendee]:
    people: OrderedDict[str, Attendee] = OrderedDict()
    for row in report.rows:
        attendee = people.setdefault(row.email, Attendee(email=row.email, name=row.name))
        attendee.lines.append(row.line)
        attendee.minutes += row.minutes
        attendee.sessions += 1
        attendee.name = attendee.name or row.name
        if row.joined and (attendee.first_joined is None or row.joined < attendee.first_joined):
            attendee.first_joined = row.joined
        if row.left and (attendee.last_left is None or row.left > attendee.last_left):
            attendee.last_left = row.left
    return list(people.values())


def import_report(
    session: Session,
    event: Event,
    report: ParsedReport,
    *,
    actor,
    now: datetime | None = None,
) -> ImportResult:
    """Check in the online registrations found in the report and record their minutes."""
    now = now or utcnow()
    out = ImportResult(
        unmatched=[Unmatched((row.line,), row.name, "", row.reason) for row in report.skipped]
    )
    people = attendees(report)
    registrations.lock_event(session, event)
    found = session.scalars(
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            Registration.event_id == event.id,
            sa.func.lower(Person.email).in_([a.email for a in people] or [""]),
        )
        .options(joinedload(Registration.person))
        .order_by(Registration.id)
        .execution_options(populate_existing=True)
    ).all()
    by_email: dict[str, list[Registration]] = {}
    for registration in found:
        by_email.setdefault((registration.person.email or "").lower(), []).append(registration)
    stored = {
        row.registration_id: row
        for row in session.scalars(
            sa.select(WebinarAttendance).where(
                WebinarAttendance.registration_id.in_([r.id for r in found] or [0])
            )
        )
    }
    for attendee in people:
        candidates = sorted(
            by_email.get(attendee.email, []),
            key=lambda r: (r.attendance_mode != AttendanceMode.online, r.id),
        )
        if not candidates:
            out.unmatched.append(_unmatched(attendee, "no_registration"))
            continue
        registration = candidates[0]
        if registration.attendance_mode != AttendanceMode.online:
            out.unmatched.append(_unmatched(attendee, "onsite"))
            continue
        joined_at = _utc(attendee.first_joined, event.timezone)
        left_at = _utc(attendee.last_left, event.timezone)
        if registration.state == RegistrationState.confirmed:
            registrations.check_in(
                session,
                registration,
                actor=actor,
                reason="webinar attendance report",
                now=joined_at if _during(event, joined_at, now) else now,
            )
            out.checked_in.append(registration)
        elif registration.state == RegistrationState.attended:
            out.already.append(registration)
        else:
            out.unmatched.append(_unmatched(attendee, "not_confirmed", registration.state))
            continue
        row = stored.get(registration.id)
        if row is None:
            session.add(
                WebinarAttendance(
                    registration_id=registration.id,
                    event_id=event.id,
                    minutes=attendee.minutes,
                    sessions=attendee.sessions,
                    first_joined_at=joined_at,
                    last_left_at=left_at,
                    imported_at=now,
                )
            )
            out.recorded += 1
        elif (row.minutes, row.sessions, as_utc(row.first_joined_at), as_utc(row.last_left_at)) != (
            attendee.minutes,
            attendee.sessions,
            joined_at,
            left_at,
        ):
            row.minutes, row.sessions, row.imported_at = attendee.minutes, attendee.sessions, now
            row.first_joined_at, row.last_left_at = joined_at, left_at
            out.recorded += 1
        else:
            out.unchanged += 1
    if out.changed:
        session.flush()
        audit.record(
            session,
            actor,
            "event",
            event.id,
            "webinar_report_imported",
            checked_in=len(out.checked_in),
            recorded=out.recorded,
            unmatched=len(out.unmatched),
        )
    return out


def _utc(local: datetime | None, tz: str) -> datetime | None:
    """A report's time (the webinar's local time, without zone) in UTC."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def _during(event: Event, moment: datetime | None, now: datetime) -> bool:
    """Whether a report's join time can be the check-in time: on the meeting's day, not later
    than now (a report of another day keeps the time of the import)."""
    if moment is None:
        return False
    start = as_utc(event.starts_at)
    return (
        start - timedelta(hours=12)
        <= moment
        <= min(now, as_utc(event.ends_at) + timedelta(hours=12))
    )


def _unmatched(attendee: Attendee, reason: str, state=None) -> Unmatched:
    return Unmatched(tuple(attendee.lines), attendee.name, attendee.email, reason, state)


# -- queries ---------------------------------------------------------------------------------


def attendance_list(event: Event) -> sa.Select:
    """Recorded online attendance of an event, people loaded, by kana / romanised name."""
    return (
        sa.select(WebinarAttendance)
        .join(Registration, WebinarAttendance.registration_id == Registration.id)
        .join(Person, Registration.person_id == Person.id)
        .where(WebinarAttendance.event_id == event.id)
        .options(joinedload(WebinarAttendance.registration).joinedload(Registration.person))
        .order_by(
            Person.family_name_kana,
            Person.given_name_kana,
            Person.romanized_name,
            WebinarAttendance.id,
        )
    )


def figures(session: Session, event: Event) -> dict[str, int]:
    """Reminders sent and attendance recorded for the event: one query."""
    reminders = (
        sa.select(sa.func.count())
        .select_from(WebinarReminder)
        .where(WebinarReminder.event_id == event.id)
        .scalar_subquery()
    )
    recorded = (
        sa.select(sa.func.count())
        .select_from(WebinarAttendance)
        .where(WebinarAttendance.event_id == event.id)
        .scalar_subquery()
    )
    minutes = (
        sa.select(sa.func.coalesce(sa.func.sum(WebinarAttendance.minutes), 0))
        .where(WebinarAttendance.event_id == event.id)
        .scalar_subquery()
    )
    row = session.execute(sa.select(reminders, recorded, minutes)).one()
    return {"reminders": row[0], "recorded": row[1], "minutes": int(row[2])}


def personal_data(session: Session, person: Person) -> dict:
    attended = rows_of_person(session, WebinarAttendance, person)
    reminded = rows_of_person(session, WebinarReminder, person)
    return {
        "online_attendance": [
            {"event": slug, "minutes": row.minutes, "sessions": row.sessions}
            for row, slug in attended
        ],
        "reminders": [
            {"event": slug, "sent_at": row.sent_at.isoformat()} for row, slug in reminded
        ],
    }
