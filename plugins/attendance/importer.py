"""Reading the organiser's attendance table (CSV) into meetings and their figures.

The format is that of ``shared/domain/data/study_group_attendance.csv``::

    meeting_no,date,registered,participants,company,university,government_other,format,note
    91,2020-07-17,2407,334,251,46,37,online,webinar participants (Zoom)

Every row is checked; invalid rows are skipped and reported with their line number and
reason. Rows whose sectors (company + university + government_other) do not add up to the
participants are kept as given and reported. A meeting that has no event yet gets one (a
past, closed or cancelled meeting, 14:30–18:00 in the series' time zone, as the demo data
makes them). Importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugins.attendance.services import Figures, save_figures
from portal import audit
from portal.errors import UserError
from portal.events.models import Event, EventFormat, EventStatus, Series
from portal.i18n import BilingualText
from portal.localtime import at

COLUMNS = (
    "meeting_no",
    "date",
    "registered",
    "participants",
    "company",
    "university",
    "government_other",
    "format",
    "note",
)
COUNT_COLUMNS = ("registered", "participants", "company", "university", "government_other")
FORMATS = ("onsite", "online", "hybrid", "cancelled")
_NUMBER = re.compile(r"\d{1,3}(,\d{3})+|\d+")


class ImportFileError(UserError):
    """The file as a whole cannot be read (missing columns, not a CSV, not UTF-8)."""


@dataclass(frozen=True)
class AttendanceRow:
    line: int
    number: int
    day: date
    format: str
    figures: Figures


@dataclass(frozen=True)
class InvalidRow:
    line: int
    reason: str


@dataclass(frozen=True)
class Mismatch:
    line: int
    number: int
    participants: int
    breakdown_total: int


@dataclass
class ImportReport:
    rows: int = 0  # valid rows read
    events_created: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    mismatched: list[Mismatch] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)


def _count(raw: str | None, column: str, errors: list[str], minimum: int = 0) -> int:
    text = (raw or "").strip()
    if not text:
        errors.append(f"{column} is missing")
        return 0
    if not _NUMBER.fullmatch(text) or int(text.replace(",", "")) < minimum:
        errors.append(f"{column}: {text!r} is not a whole number of {minimum} or more")
        return 0
    return int(text.replace(",", ""))


def _day(raw: str | None, errors: list[str]) -> date | None:
    text = (raw or "").strip()
    if not text:
        errors.append("date is missing")
        return None
    for pattern in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    errors.append(f"date: {text!r} is not a valid date (YYYY-MM-DD)")
    return None


def figures_for(fmt: str, counts: dict[str, int], note: str) -> Figures:
    """The figures of one CSV row: the on-site/online split follows from its format."""
    participants = counts["participants"]
    online = onsite = None
    if fmt == "online":
        online, onsite = participants, 0  # everyone joined the webinar
    elif fmt == "onsite":
        online, onsite = 0, participants
    elif fmt == "cancelled" and participants == 0:
        online, onsite = 0, 0
    return Figures(
        **counts,
        online_participants=online,
        onsite_participants=onsite,
        cancelled=fmt == "cancelled",
        note=note,
    )


def parse(text: str) -> tuple[list[AttendanceRow], list[InvalidRow]]:
    """Check every row; returns the valid rows and the invalid ones with their reasons."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header and c != "note"]
    if missing:
        raise ImportFileError("missing column(s): " + ", ".join(missing))
    reader.fieldnames = header

    rows: list[AttendanceRow] = []
    invalid: list[InvalidRow] = []
    first_line: dict[int, int] = {}
    for raw in reader:
        line = reader.line_num
        errors: list[str] = []
        if raw.get(None):
            errors.append("more values than columns")
        number = _count(raw.get("meeting_no"), "meeting_no", errors, minimum=1)
        day = _day(raw.get("date"), errors)
        counts = {c: _count(raw.get(c), c, errors) for c in COUNT_COLUMNS}
        fmt = (raw.get("format") or "").strip().lower()
        if fmt not in FORMATS:
            errors.append(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
        if not errors and number in first_line:
            errors.append(f"meeting {number} appears again (first on line {first_line[number]})")
        if errors:
            invalid.append(InvalidRow(line=line, reason="; ".join(errors)))
            continue
        first_line[number] = line
        note = (raw.get("note") or "").strip()
        rows.append(
            AttendanceRow(
                line=line,
                number=number,
                day=day,
                format=fmt,
                figures=figures_for(fmt, counts, note),
            )
        )
    return rows, invalid


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError("the file is not UTF-8 text") from exc


def meeting_event(series: Series, number: int, day: date, fmt: str) -> Event:
    """A past meeting of the series, as the demo data makes them (portal.demo)."""
    return Event(
        series_id=series.id,
        number=number,
        slug=f"{series.slug}-{number}",
        title=BilingualText(
            ja=f"第{number}回 {series.name.get('ja')}",
            en=f"{series.name.get('en')}, meeting {number}",
        ),
        starts_at=at(day, 14, 30, series.timezone),
        ends_at=at(day, 18, 0, series.timezone),
        timezone=series.timezone,
        format=EventFormat(fmt) if fmt in EventFormat.__members__ else EventFormat.onsite,
        status=EventStatus.cancelled if fmt == "cancelled" else EventStatus.closed,
    )


def import_attendance(session: Session, text: str, series: Series, actor=None) -> ImportReport:
    """Create missing meetings and create or update their figures; does not commit."""
    rows, invalid = parse(text)
    report = ImportReport(rows=len(rows), invalid=invalid)
    events = {
        e.number: e for e in session.scalars(sa.select(Event).where(Event.series_id == series.id))
    }
    for row in rows:
        event = events.get(row.number)
        if event is None:
            slug = f"{series.slug}-{row.number}"
            if session.scalar(sa.select(Event.id).where(Event.slug == slug)) is not None:
                report.invalid.append(
                    InvalidRow(row.line, f"the slug {slug!r} belongs to another event")
                )
                report.rows -= 1
                continue
            event = meeting_event(series, row.number, row.day, row.format)
            session.add(event)
            session.flush()
            audit.record(session, actor, "event", event.id, "created_by_attendance_import")
            events[row.number] = event
            report.events_created += 1
        if not row.figures.adds_up:
            report.mismatched.append(
                Mismatch(
                    row.line, row.number, row.figures.participants, row.figures.breakdown_total
                )
            )
        _, outcome = save_figures(session, event, row.figures, actor=actor)
        setattr(report, outcome, getattr(report, outcome) + 1)
    report.invalid.sort(key=lambda r: r.line)
    return report
