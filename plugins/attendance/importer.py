"""Reading the organiser's attendance table (CSV or Excel) into meetings and their figures.

The history file kept in the repository (``plugins/attendance/data/study_group_attendance.csv``)::

    meeting_no,date,mailing_list,participants,company,university,government_other,format,note
    91,2020-07-17,2407,334,251,46,37,online,webinar participants (Zoom)

Files come as CSV (UTF-8, with or without a byte order mark, or Shift_JIS/CP932 as Excel
writes them in Japan) or as Excel workbooks (.xlsx, the first sheet). Column headers may be
English (as above) or Japanese (開催回, 開催日, 登録人数, 参加者数, 企業関係者, 大学関係者, 官庁他,
開催形式, 備考), including the portal's own Japanese and English statistics export (on-site,
online and cancelled columns instead of a format column; its total row is skipped).

登録人数 / ``registered`` is the number of registrations for the meeting, as the portal counts
them. The history's count of people on the mailing list is a separate column,
``mailing_list`` (メーリングリスト登録者数).

Every row is checked; invalid rows are skipped and reported with their line number and
reason. Rows whose sectors (company + university + government_other) do not add up to the
participants are kept as given and reported. A row belongs to the series' meeting with the
same number AND date: a row whose number belongs to a meeting on another day is reported
and skipped, and figures are only recorded for meetings that have taken place (or were
cancelled). A meeting that has no event yet gets one (a past, closed or cancelled meeting,
14:30–18:00 in the series' time zone, as the demo data makes them). Importing the same file
twice changes nothing. Only the meetings named in the file are loaded.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Session

from plugins.attendance.services import Figures, NotHeld, event_day, save_figures
from portal import audit
from portal.db import utcnow
from portal.events.models import Event, EventFormat, EventStatus, Series
from portal.i18n import BilingualText
from portal.localtime import at


def N_(message: str) -> str:  # noqa: N802 - marks a message for extraction; translated later
    return message


# The canonical (English) columns, in the order of the history file.
COLUMNS = (
    "meeting_no",
    "date",
    "registered",
    "mailing_list",
    "participants",
    "company",
    "university",
    "government_other",
    "format",
    "note",
)
REQUIRED = ("meeting_no", "date", "participants", "company", "university", "government_other")
COUNT_COLUMNS = ("participants", "company", "university", "government_other")
OPTIONAL_COUNTS = ("registered", "mailing_list")
FORMATS = ("onsite", "online", "hybrid", "cancelled")
_NUMBER = re.compile(r"\d{1,3}(,\d{3})+|\d+")

# Header aliases (compared after NFKC folding, lower case, without spaces): English and
# Japanese, including both languages of the portal's own export (plugins.attendance.views).
HEADERS = {
    "meeting_no": ("meeting_no", "meeting", "no", "number", "開催回", "回", "回数", "第n回"),
    "date": ("date", "day", "日付", "開催日", "年月日"),
    "registered": ("registered", "registrations", "登録人数", "登録者数", "申込者数"),
    "mailing_list": (
        "mailing_list",
        "mailinglist",
        "onthemailinglist",
        "メーリングリスト登録者数",
        "メーリングリスト",
        "登録人数(メーリングリスト)",
    ),
    "participants": ("participants", "参加者数", "参加者"),
    "company": ("company", "企業関係者", "企業"),
    "university": ("university", "大学関係者", "大学"),
    "government_other": (
        "government_other",
        "government&other",
        "governmentandother",
        "government/other",
        "官庁他",
        "官庁その他",
    ),
    "format": ("format", "開催形式", "形式"),
    "note": ("note", "notes", "備考", "メモ"),
    "onsite_participants": ("onsite", "onsiteparticipants", "会場", "会場参加", "会場参加者数"),
    "online_participants": (
        "online",
        "onlineparticipants",
        "オンライン",
        "オンライン参加",
        "オンライン参加者数",
    ),
    "cancelled": ("cancelled", "canceled", "中止"),
}
FORMAT_VALUES = {
    "onsite": "onsite",
    "on-site": "onsite",
    "onsite only": "onsite",
    "会場": "onsite",
    "対面": "onsite",
    "online": "online",
    "オンライン": "online",
    "webinar": "online",
    "ウェビナー": "online",
    "hybrid": "hybrid",
    "ハイブリッド": "hybrid",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "中止": "cancelled",
}
TOTAL_LABELS = ("total", "合計", "計")


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text or "").strip().lower()
    return re.sub(r"[\s_]+", "", folded)


_ALIASES = {_key(alias): column for column, aliases in HEADERS.items() for alias in aliases}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (missing columns, not a CSV, unknown encoding)."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params

    def translated(self) -> str:
        return gettext(self.message, **self.params)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a row: an English message (translated on the page) and values."""

    message: str
    params: tuple = ()

    def english(self) -> str:
        return self.message % dict(self.params) if self.params else self.message

    def translated(self) -> str:
        return gettext(self.message, **dict(self.params))


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
    problems: tuple[Problem, ...]
    number: int | None = None

    @property
    def reason(self) -> str:
        return "; ".join(p.english() for p in self.problems)

    def translated(self) -> str:
        return gettext("; ").join(p.translated() for p in self.problems)


@dataclass(frozen=True)
class Mismatch:
    line: int
    number: int
    participants: int
    breakdown_total: int


@dataclass(frozen=True)
class RowOutcome:
    """What the import does (or did) with one valid row: created, changed or unchanged."""

    line: int
    number: int
    day: date
    outcome: str
    figures: Figures
    event_created: bool = False


@dataclass
class ImportReport:
    rows: int = 0  # valid rows read
    events_created: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    mismatched: list[Mismatch] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    outcomes: list[RowOutcome] = field(default_factory=list)

    def rows_with(self, outcome: str) -> list[RowOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]


def _count(raw, column: str, problems: list[Problem], minimum: int = 0) -> int:
    text = unicodedata.normalize("NFKC", str(raw if raw is not None else "")).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # numbers read from a workbook
        text = text[:-2]
    if not text:
        problems.append(Problem(N_("%(column)s is missing"), (("column", column),)))
        return 0
    if not _NUMBER.fullmatch(text) or int(text.replace(",", "")) < minimum:
        problems.append(
            Problem(
                N_("%(column)s: %(value)r is not a whole number of %(minimum)s or more"),
                (("column", column), ("value", text), ("minimum", minimum)),
            )
        )
        return 0
    return int(text.replace(",", ""))


def _optional_count(raw, column: str, problems: list[Problem]) -> int | None:
    text = unicodedata.normalize("NFKC", str(raw if raw is not None else "")).strip()
    if text in ("", "-", "–", "―"):
        return None
    return _count(text, column, problems)


def _day(raw, problems: list[Problem]) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if not text:
        problems.append(Problem(N_("date is missing")))
        return None
    text = re.sub(r"\(.\)$", "", text)  # 2020年11月6日(金)
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    problems.append(
        Problem(N_("date: %(value)r is not a valid date (YYYY-MM-DD)"), (("value", text),))
    )
    return None


def _format(raw: dict, counts: dict, problems: list[Problem]) -> str:
    if "format" in raw:
        text = unicodedata.normalize("NFKC", str(raw.get("format") or "")).strip().lower()
        fmt = FORMAT_VALUES.get(text, text)
        if fmt not in FORMATS:
            problems.append(
                Problem(
                    N_("format: %(value)r is not one of %(formats)s"),
                    (("value", text), ("formats", ", ".join(FORMATS))),
                )
            )
        return fmt
    # The portal's export: cancelled, on-site and online columns instead of a format.
    if str(raw.get("cancelled") or "").strip():
        return "cancelled"
    onsite, online = counts.get("onsite_participants"), counts.get("online_participants")
    if online and onsite:
        return "hybrid"
    if online:
        return "online"
    return "onsite"


def figures_for(fmt: str, counts: dict, note: str) -> Figures:
    """The figures of one row: the on-site/online split follows from its format unless the
    file gives it."""
    participants = counts["participants"]
    onsite, online = counts.get("onsite_participants"), counts.get("online_participants")
    if onsite is None and online is None:
        if fmt == "online":
            online, onsite = participants, 0  # everyone joined the webinar
        elif fmt == "onsite":
            online, onsite = 0, participants
        elif fmt == "cancelled" and participants == 0:
            online, onsite = 0, 0
    return Figures(
        registered=counts.get("registered"),
        mailing_list=counts.get("mailing_list"),
        participants=participants,
        company=counts["company"],
        university=counts["university"],
        government_other=counts["government_other"],
        online_participants=online,
        onsite_participants=onsite,
        cancelled=fmt == "cancelled",
        note=note,
    )


def _columns(header: list[str]) -> list[str | None]:
    return [_ALIASES.get(_key(h)) for h in header]


def parse_table(table: list[list]) -> tuple[list[AttendanceRow], list[InvalidRow]]:
    """Check every row of a table (first row: the headers); returns valid and invalid rows."""
    if not table:
        raise ImportFileError(N_("the file is empty"))
    columns = _columns([str(h or "") for h in table[0]])
    present = set(filter(None, columns))
    missing = [c for c in REQUIRED if c not in present]
    if "format" not in present and not ({"onsite_participants", "online_participants"} & present):
        missing.append("format")
    if missing:
        raise ImportFileError(N_("missing column(s): %(columns)s"), columns=", ".join(missing))

    rows: list[AttendanceRow] = []
    invalid: list[InvalidRow] = []
    first_line: dict[int, int] = {}
    for index, values in enumerate(table[1:], start=2):
        if not any(str(v).strip() for v in values if v is not None):
            continue
        raw: dict = {}
        problems: list[Problem] = []
        extra = False
        for position, value in enumerate(values):
            if position >= len(columns):
                extra = extra or (value is not None and str(value).strip() != "")
                continue
            if columns[position] is not None:
                raw[columns[position]] = value
        first = _key(str(raw.get("meeting_no") or ""))
        if first in TOTAL_LABELS:
            continue  # the export's total row
        if extra:
            problems.append(Problem(N_("more values than columns")))
        number = _count(raw.get("meeting_no"), "meeting_no", problems, minimum=1)
        day = _day(raw.get("date"), problems)
        counts: dict = {c: _count(raw.get(c), c, problems) for c in COUNT_COLUMNS}
        for c in (*OPTIONAL_COUNTS, "onsite_participants", "online_participants"):
            if c in raw:
                counts[c] = _optional_count(raw.get(c), c, problems)
        fmt = _format(raw, counts, problems)
        if not problems and number in first_line:
            problems.append(
                Problem(
                    N_("meeting %(number)s appears again (first on line %(line)s)"),
                    (("number", number), ("line", first_line[number])),
                )
            )
        if problems:
            invalid.append(InvalidRow(line=index, problems=tuple(problems)))
            continue
        first_line[number] = index
        note = str(raw.get("note") or "").strip()
        rows.append(
            AttendanceRow(
                line=index,
                number=number,
                day=day,
                format=fmt,
                figures=figures_for(fmt, counts, note),
            )
        )
    return rows, invalid


def _csv_table(text: str) -> list[list]:
    return [row for row in csv.reader(io.StringIO(text))]


def parse(text: str) -> tuple[list[AttendanceRow], list[InvalidRow]]:
    """Check every row of CSV text; returns the valid rows and the invalid ones."""
    return parse_table(_csv_table(text))


def decode(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (with or without BOM), else Shift_JIS/CP932."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise ImportFileError(N_("the file is neither UTF-8 nor Shift_JIS text")) from exc


def _xlsx_table(data: bytes) -> list[list]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(N_("the file is not an Excel workbook (.xlsx)")) from exc
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def read_table(data: bytes, filename: str = "") -> list[list]:
    """An uploaded file (CSV or .xlsx, recognised by its content) as a table of cells."""
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        return _xlsx_table(data)
    return _csv_table(decode(data))


def table_as_csv(table: list[list]) -> str:
    """A table as CSV text (carried from the preview to the import)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in table:
        writer.writerow(
            [
                v.date().isoformat() if isinstance(v, datetime) else ("" if v is None else v)
                for v in row
            ]
        )
    return out.getvalue()


def read_text(path: str | Path) -> str:
    """A file (CSV in UTF-8 or Shift_JIS, or .xlsx) as CSV text."""
    path = Path(path)
    return table_as_csv(read_table(path.read_bytes(), path.name))


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


def _skip(report: ImportReport, row: AttendanceRow, problem: Problem) -> None:
    report.invalid.append(InvalidRow(row.line, (problem,), number=row.number))
    report.rows -= 1


def import_attendance(
    session: Session, text: str, series: Series, actor=None, now=None
) -> ImportReport:
    """Create missing meetings and create or update their figures; does not commit.

    For a dry run, call it and roll back: the report lists what would happen."""
    now = now or utcnow()
    rows, invalid = parse(text)
    report = ImportReport(rows=len(rows), invalid=invalid)
    # Only the meetings the file names (not the series' whole history), 500 numbers at a time.
    numbers = sorted({row.number for row in rows})
    events = {}
    for start in range(0, len(numbers), 500):
        events.update(
            (e.number, e)
            for e in session.scalars(
                sa.select(Event).where(
                    Event.series_id == series.id, Event.number.in_(numbers[start : start + 500])
                )
            )
        )
    for row in rows:
        event = events.get(row.number)
        created_event = False
        if event is None:
            slug = f"{series.slug}-{row.number}"
            if session.scalar(sa.select(Event.id).where(Event.slug == slug)) is not None:
                _skip(
                    report,
                    row,
                    Problem(N_("the slug %(slug)r belongs to another event"), (("slug", slug),)),
                )
                continue
            event = meeting_event(series, row.number, row.day, row.format)
            if event.ends_at > now and row.format != "cancelled":
                _skip(report, row, Problem(N_("the meeting has not taken place yet")))
                continue
            session.add(event)
            session.flush()
            audit.record(session, actor, "event", event.id, "created_by_attendance_import")
            events[row.number] = event
            report.events_created += 1
            created_event = True
        elif event_day(event) != row.day:
            _skip(
                report,
                row,
                Problem(
                    N_("meeting %(number)s on the portal is on %(portal_day)s, not %(day)s"),
                    (
                        ("number", row.number),
                        ("portal_day", event_day(event).isoformat()),
                        ("day", row.day.isoformat()),
                    ),
                ),
            )
            continue
        try:
            _, outcome = save_figures(session, event, row.figures, actor=actor, now=now)
        except NotHeld:
            _skip(report, row, Problem(N_("the meeting has not taken place yet")))
            continue
        if not row.figures.adds_up:
            report.mismatched.append(
                Mismatch(
                    row.line, row.number, row.figures.participants, row.figures.breakdown_total
                )
            )
        setattr(report, outcome, getattr(report, outcome) + 1)
        report.outcomes.append(
            RowOutcome(row.line, row.number, row.day, outcome, row.figures, created_event)
        )
    report.invalid.sort(key=lambda r: r.line)
    return report
