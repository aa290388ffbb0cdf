"""Attendance figures: reading them (per meeting, per series, per fiscal year) and saving them.

``save_figures`` is the one function that creates or changes a ``MeetingAttendance`` row; it
writes an audit entry and does not commit. Everything else only reads. The statistics of a
series take a constant number of queries however many meetings it has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, lazyload, load_only

from plugins.attendance.models import AttendanceSource, MeetingAttendance
from portal import audit, plugins
from portal.announcements.counts import list_history, list_size_on
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Series
from portal.localtime import as_utc, local_date, year_start, years_case
from portal.text import truthy

PLUGIN = "attendance"
FIGURE_FIELDS = (
    "registered",
    "mailing_list",
    "participants",
    "company",
    "university",
    "government_other",
    "online_participants",
    "onsite_participants",
    "cancelled",
    "note",
)


FISCAL_YEAR_FIRST_MONTH = 4


def fiscal_year(day: date) -> int:
    """The Japanese fiscal year (年度) of a day: 2019年度 runs from April 2019 to March 2020."""
    return day.year if day.month >= FISCAL_YEAR_FIRST_MONTH else day.year - 1


def event_day(event: Event) -> date:
    """The meeting's date in its own time zone."""
    return local_date(event.starts_at, event.timezone)


@dataclass(frozen=True)
class Figures:
    """One meeting's figures, as reported (or as counted from registrations)."""

    registered: int | None = 0  # 登録人数: registrations for the meeting (None: not known)
    mailing_list: int | None = None  # people on the mailing list (imported history)
    participants: int = 0
    company: int = 0
    university: int = 0
    government_other: int = 0
    online_participants: int | None = None
    onsite_participants: int | None = None
    cancelled: bool = False
    note: str = ""
    source: str = AttendanceSource.import_.value

    @property
    def breakdown_total(self) -> int:
        return self.company + self.university + self.government_other

    @property
    def adds_up(self) -> bool:
        return self.breakdown_total == self.participants

    @classmethod
    def of(cls, row: MeetingAttendance) -> Figures:
        return cls(
            **{name: getattr(row, name) for name in FIGURE_FIELDS},
            source=AttendanceSource(row.source).value,
        )


# -- figures from the portal's own registrations ---------------------------------------------


def _registration_model():
    """The Registration model, or None while portal.registration does not exist yet."""
    try:
        from portal.registration.models import Registration
    except ModuleNotFoundError as exc:
        if exc.name in ("portal.registration", "portal.registration.models"):
            return None
        raise
    return Registration


def _value(member) -> str | None:
    return None if member is None else str(getattr(member, "value", member))


def live_figures(session: Session, events: list[Event]) -> dict[int, Figures | None] | None:
    """Figures counted from registrations for several events in one query (None without the
    registration area). Registered: every registration that is not cancelled. Participants:
    the registrations marked attended (checked in on site, or attended online), by attendance
    mode and by the person's sector (people without a sector are in no sector column)."""
    Registration = _registration_model()
    if Registration is None:
        return None
    from portal.accounts.models import Person

    ids = [e.id for e in events]
    found: dict[int, dict] = {i: defaultdict(int) for i in ids}
    if not ids:
        return {}
    stmt = (
        sa.select(
            Registration.event_id,
            Registration.state,
            Registration.attendance_mode,
            Person.sector,
            sa.func.count(),
        )
        .outerjoin(Person, Person.id == Registration.person_id)
        .where(Registration.event_id.in_(ids))
        .group_by(
            Registration.event_id, Registration.state, Registration.attendance_mode, Person.sector
        )
    )
    for event_id, state, mode, sector, n in session.execute(stmt):
        counts = found[event_id]
        state, mode, sector = _value(state), _value(mode), _value(sector)
        counts["any"] += n
        if state == "cancelled":
            continue
        counts["registered"] += n
        if state != "attended":
            continue
        counts["participants"] += n
        counts["online_participants" if mode == "online" else "onsite_participants"] += n
        if sector in ("company", "university", "government_other"):
            counts[sector] += n
    result: dict[int, Figures | None] = {}
    for event in events:
        counts = found[event.id]
        if not counts["any"]:
            result[event.id] = None
            continue
        result[event.id] = Figures(
            registered=counts["registered"],
            participants=counts["participants"],
            company=counts["company"],
            university=counts["university"],
            government_other=counts["government_other"],
            online_participants=counts["online_participants"],
            onsite_participants=counts["onsite_participants"],
            cancelled=event.status == EventStatus.cancelled,
            source=AttendanceSource.portal.value,
        )
    return result


def figures_from_registrations(session: Session, event: Event) -> Figures | None:
    """The event's figures counted from its registrations and check-ins.

    None when the portal has no registration area yet or the event has no registrations.
    """
    found = live_figures(session, [event])
    return None if found is None else found.get(event.id)


# -- reading stored figures -------------------------------------------------------------------


def stored_row(session: Session, event: Event) -> MeetingAttendance | None:
    return session.scalar(
        sa.select(MeetingAttendance).where(MeetingAttendance.event_id == event.id)
    )


def event_figures(session: Session, event: Event) -> Figures | None:
    """What the portal knows about one meeting: the saved figures, else the live count; the
    people on the list that day from the list's history where the portal keeps it."""
    row = stored_row(session, event)
    figures = Figures.of(row) if row is not None else figures_from_registrations(session, event)
    if figures is None:
        return None
    size = list_size_on(session, event.series, event_day(event))
    return figures if size is None else replace(figures, mailing_list=size)


def _list_sizes(session: Session, series: Series, rows: list, history=None) -> None:
    """People on the series' list on each meeting's day, from the list's history (one query,
    or none with ``history`` from ``list_history``); meetings before the list was kept in
    the portal keep their imported figure."""
    sizes = (history or list_history(session, series))([row.day for row in rows])
    for row in rows:
        size = sizes.get(row.day)
        if size is not None:
            row.figures = replace(row.figures, mailing_list=size)


# -- changing figures -------------------------------------------------------------------------


def save_figures(
    session: Session, event: Event, figures: Figures, actor=None, now=None
) -> tuple[MeetingAttendance, str]:
    """Create or update the event's figures; returns the row and "created", "changed" or
    "unchanged". Writing the same figures twice changes nothing (no audit entry either).
    Raises NotHeld for a meeting that has not ended yet (unless it was cancelled)."""
    stamp = now or utcnow()
    if (
        not figures.cancelled
        and event.status != EventStatus.cancelled
        and event.ends_at is not None
        and as_utc(event.ends_at) > stamp
    ):
        raise NotHeld(event.slug)
    row = stored_row(session, event)
    values = {name: getattr(figures, name) for name in FIGURE_FIELDS}
    source = AttendanceSource(figures.source)
    if row is None:
        row = MeetingAttendance(event_id=event.id, source=source, **values)
        if source == AttendanceSource.import_:
            row.imported_at = stamp
        session.add(row)
        session.flush()
        outcome = "created"
    else:
        if Figures.of(row) == figures:
            return row, "unchanged"
        for name, value in values.items():
            setattr(row, name, value)
        row.source = source
        if source == AttendanceSource.import_:
            row.imported_at = stamp
        session.flush()
        outcome = "changed"
    audit.record(
        session,
        actor,
        "event",
        event.id,
        f"attendance_{outcome}",
        source=source.value,
        **{name: getattr(figures, name) for name in FIGURE_FIELDS if name != "note"},
    )
    return row, outcome


class NotHeld(UserError):
    """Figures are recorded only for meetings that have taken place (or were cancelled)."""


class NoFigures(UserError):
    """There is nothing to count: no registration area or no registrations."""


def record_from_registrations(
    session: Session, event: Event, actor=None
) -> tuple[MeetingAttendance, str]:
    """Save the figures counted from registrations as the meeting's reported figures."""
    figures = figures_from_registrations(session, event)
    if figures is None:
        raise NoFigures(event.slug)
    return save_figures(session, event, figures, actor=actor)


# -- figures saved once a meeting has settled -------------------------------------------------

SETTLED_AFTER = timedelta(days=14)  # check-ins and the webinar report are in by then


def record_settled_meetings(session: Session, now=None) -> list[int]:
    """Save the live figures of every meeting that ended more than ``SETTLED_AFTER`` ago and
    has none yet (series with the plugin on, not drafts, with registrations): a scheduled job,
    so the statistics page counts live only the last few meetings, whatever the history's
    size. An organiser can still record or import figures again. Returns the event ids."""
    now = now or utcnow()
    events = session.scalars(
        sa.select(Event)
        .outerjoin(MeetingAttendance, MeetingAttendance.event_id == Event.id)
        .where(
            MeetingAttendance.id.is_(None),
            Event.id.in_(plugins.enabled_events(PLUGIN)),
            Event.status != EventStatus.draft,
            Event.ends_at < now - SETTLED_AFTER,
        )
        .order_by(Event.id)
    ).all()
    live = live_figures(session, list(events)) or {}
    saved = []
    for event in events:
        figures = live.get(event.id)
        if figures is None:
            continue
        save_figures(session, event, figures, actor=None, now=now)
        saved.append(event.id)
    return saved


# -- who sees the statistics ------------------------------------------------------------------


def statistics_public(session: Session, series: Series, defaults: dict | None = None) -> bool:
    """Public when the series has the plugin on with the setting ``public``."""
    if not plugins.series_enabled(series, PLUGIN):
        return False
    return truthy({**(defaults or {}), **plugins.series_settings(series, PLUGIN)}.get("public"))


def is_organiser(user, series: Series) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_organiser_of(series))


def can_see_statistics(session: Session, series: Series, user, defaults: dict | None = None):
    return is_organiser(user, series) or statistics_public(session, series, defaults)


# -- the statistics of a series ---------------------------------------------------------------
#
# The page shows one fiscal year at a time (the latest by default) and a table with a row per
# fiscal year; the CSV streams the whole history. Both cost the same few statements however
# long the history: the totals per fiscal year are summed by the database (a CASE turns each
# meeting's start into its fiscal year in its own time zone), and only the meetings of the
# year shown are loaded. Meetings without saved figures (the last few: the daily job
# ``attendance-figures`` saves them two weeks after the meeting) are counted live.


@dataclass
class MeetingRow:
    event: Event
    figures: Figures
    day: date
    fiscal_year: int
    cumulative: int = 0

    @property
    def number(self) -> int | None:
        return self.event.number


@dataclass
class Totals:
    """Sums over meetings; registered is a list size per meeting and is not summed."""

    meetings: int = 0  # held, i.e. not cancelled
    cancelled: int = 0
    participants: int = 0
    company: int = 0
    university: int = 0
    government_other: int = 0
    onsite_participants: int | None = None
    online_participants: int | None = None
    unsplit: int = 0  # participants of meetings where on site / online is not known
    cumulative: int = 0

    def add(self, figures: Figures, cumulative: int | None = None) -> None:
        f = figures
        if f.cancelled:
            self.cancelled += 1
        else:
            self.meetings += 1
        self.participants += f.participants
        self.company += f.company
        self.university += f.university
        self.government_other += f.government_other
        for name in ("onsite_participants", "online_participants"):
            value = getattr(f, name)
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)
        if f.onsite_participants is None and f.online_participants is None:
            self.unsplit += f.participants
        if cumulative is not None:
            self.cumulative = cumulative

    def add_totals(self, other: Totals) -> None:
        self.meetings += other.meetings
        self.cancelled += other.cancelled
        self.participants += other.participants
        self.company += other.company
        self.university += other.university
        self.government_other += other.government_other
        self.unsplit += other.unsplit
        for name in ("onsite_participants", "online_participants"):
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)
        self.cumulative = other.cumulative

    @property
    def average(self) -> int | None:
        """Participants per meeting held, rounded."""
        return round(self.participants / self.meetings) if self.meetings else None


@dataclass
class FiscalYearTotals(Totals):
    year: int = 0


@dataclass
class Statistics:
    series: Series
    rows: list[MeetingRow]  # the meetings of the fiscal year shown (none for all years)
    totals: Totals  # of the year shown, or of the whole history
    fiscal_years: list[FiscalYearTotals]  # every fiscal year with figures, in order
    selected_year: int | None = None  # None: all years, a row per fiscal year
    missing: list[tuple[int, int]] = field(default_factory=list)  # number ranges not recorded

    @property
    def years(self) -> list[int]:
        return [fy.year for fy in self.fiscal_years]

    @property
    def overall(self) -> Totals:
        """The whole history."""
        total = Totals()
        for fy in self.fiscal_years:
            total.add_totals(fy)
        return total


def _of_series(series: Series) -> list:
    return [Event.series_id == series.id, Event.status != EventStatus.draft]


def _zones(session: Session, series: Series) -> dict[str, tuple[int, int]]:
    """The time zones of the series' meetings, each with its first and last fiscal year."""
    rows = session.execute(
        sa.select(Event.timezone, sa.func.min(Event.starts_at), sa.func.max(Event.starts_at))
        .where(*_of_series(series))
        .group_by(Event.timezone)
    ).all()
    zones = {}
    for zone, first, last in rows:
        first, last = as_utc(first), as_utc(last)
        zones[zone] = (fiscal_year(local_date(first, zone)), fiscal_year(local_date(last, zone)))
    return zones


def _fiscal_year_start(year: int, zone: str):
    return year_start(year, zone, FISCAL_YEAR_FIRST_MONTH)


def _fiscal_year_expression(zones: dict[str, tuple[int, int]]):
    """A CASE giving a meeting's fiscal year from its start in its own time zone (with one
    zone, as usual, the CASE compares the start only: half the work per meeting)."""
    return years_case(
        Event.starts_at,
        zones,
        zone_column=Event.timezone if len(zones) > 1 else None,
        first_month=FISCAL_YEAR_FIRST_MONTH,
    )


def _in_fiscal_year(zones: dict[str, tuple[int, int]], year: int):
    return sa.or_(
        *(
            sa.and_(
                Event.timezone == zone,
                Event.starts_at >= _fiscal_year_start(year, zone),
                Event.starts_at < _fiscal_year_start(year + 1, zone),
            )
            for zone in sorted(zones)
        )
    )


def _unreported(session: Session, series: Series, now) -> list[MeetingRow]:
    """Meetings without saved figures that belong in the table: over (counted live from their
    registrations) or cancelled. Few: the daily job saves the figures of settled meetings."""
    events = session.scalars(
        sa.select(Event)
        .outerjoin(MeetingAttendance, MeetingAttendance.event_id == Event.id)
        .where(
            *_of_series(series),
            MeetingAttendance.id.is_(None),
            sa.or_(Event.ends_at < now, Event.status == EventStatus.cancelled),
        )
    ).all()
    ended = [e for e in events if as_utc(e.ends_at) < as_utc(now)]
    live = (live_figures(session, ended) if ended else {}) or {}
    rows = []
    for event in events:
        if live.get(event.id) is not None:
            figures = live[event.id]
        elif event.status == EventStatus.cancelled:
            figures = Figures(cancelled=True, source=AttendanceSource.portal.value)
        else:
            continue
        day = event_day(event)
        rows.append(MeetingRow(event=event, figures=figures, day=day, fiscal_year=fiscal_year(day)))
    return rows


_SUMMED = ("participants", "company", "university", "government_other")


@dataclass
class Numbers:
    """How many meetings with figures have a number, and the lowest and highest number: with
    numbers unique in a series, the runs of missing numbers exist only when fewer meetings
    are numbered than the range between them holds."""

    count: int = 0
    low: int | None = None
    high: int | None = None

    def add(self, count: int, low: int | None, high: int | None) -> None:
        if not count:
            return
        self.count += count
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    @property
    def gaps(self) -> bool:
        return self.count > 0 and self.count < self.high - self.low + 1


def _fiscal_year_totals(
    session: Session,
    zones: dict,
    unreported: list[MeetingRow],
    series: Series,
    numbers: Numbers | None = None,
) -> list[FiscalYearTotals]:
    """Totals per fiscal year, summed by the database, plus the meetings counted live; the
    meeting numbers are counted into ``numbers`` on the way (for ``Numbers.gaps``)."""
    M = MeetingAttendance
    year = _fiscal_year_expression(zones).label("year")
    unsplit = sa.and_(M.onsite_participants.is_(None), M.online_participants.is_(None))
    stmt = (
        sa.select(
            year,
            sa.func.sum(sa.case((M.cancelled.is_(True), 0), else_=1)),
            sa.func.sum(sa.case((M.cancelled.is_(True), 1), else_=0)),
            *(sa.func.sum(getattr(M, name)) for name in _SUMMED),
            sa.func.sum(M.onsite_participants),
            sa.func.sum(M.online_participants),
            sa.func.sum(sa.case((unsplit, M.participants), else_=0)),
            sa.func.count(Event.number),
            sa.func.min(Event.number),
            sa.func.max(Event.number),
        )
        .select_from(Event)
        .join(M, M.event_id == Event.id)
        .where(*_of_series(series))
        .group_by(year)
    )
    years: dict[int, FiscalYearTotals] = {}
    numbers = numbers if numbers is not None else Numbers()
    for y, held, cancelled, *sums, onsite, online, unsplit_sum, n, low, high in session.execute(
        stmt
    ):
        numbers.add(n, low, high)
        if y is None:
            continue
        fy = years[y] = FiscalYearTotals(year=y, meetings=int(held or 0))
        fy.cancelled = int(cancelled or 0)
        for name, value in zip(_SUMMED, sums, strict=True):
            setattr(fy, name, int(value or 0))
        fy.onsite_participants = None if onsite is None else int(onsite)
        fy.online_participants = None if online is None else int(online)
        fy.unsplit = int(unsplit_sum or 0)
    for row in unreported:
        years.setdefault(row.fiscal_year, FiscalYearTotals(year=row.fiscal_year)).add(row.figures)
        if row.number is not None:
            numbers.add(1, row.number, row.number)
    cumulative = 0
    ordered = [years[y] for y in sorted(years)]
    for fy in ordered:
        cumulative += fy.participants
        fy.cumulative = cumulative
    return ordered


def _missing(session: Session, series: Series, unreported: list[MeetingRow]):
    """Runs of meeting numbers without figures (e.g. 11–80), found by the database."""
    M = MeetingAttendance
    extra = [row.event.id for row in unreported]
    numbered = (
        sa.select(
            Event.number.label("number"),
            sa.func.lag(Event.number).over(order_by=Event.number).label("previous"),
        )
        .select_from(Event)
        .outerjoin(M, M.event_id == Event.id)
        .where(
            *_of_series(series),
            Event.number.is_not(None),
            sa.or_(M.id.is_not(None), Event.id.in_(extra)),
        )
        .subquery()
    )
    gaps = session.execute(
        sa.select(numbered.c.previous + 1, numbered.c.number - 1)
        .where(numbered.c.number - numbered.c.previous > 1)
        .order_by(numbered.c.number)
    ).all()
    return [(int(a), int(b)) for a, b in gaps]


_SHOWN = (
    Event.id,
    Event.series_id,
    Event.number,
    Event.slug,
    Event.title,
    Event.starts_at,
    Event.ends_at,
    Event.timezone,
    Event.status,
)


def _meetings_of_year(
    session: Session, series: Series, zones: dict, year: int, unreported: list[MeetingRow]
) -> list[MeetingRow]:
    pairs = session.execute(
        sa.select(Event, MeetingAttendance)
        .join(MeetingAttendance, MeetingAttendance.event_id == Event.id)
        .where(*_of_series(series), _in_fiscal_year(zones, year))
        # What the table shows of a meeting: not its texts, venue or series row (the
        # series is in the session already).
        .options(load_only(*_SHOWN), lazyload(Event.series))
    ).all()
    rows = [
        MeetingRow(event=e, figures=Figures.of(m), day=event_day(e), fiscal_year=year)
        for e, m in pairs
    ]
    rows += [row for row in unreported if row.fiscal_year == year]
    rows.sort(key=lambda r: (as_utc(r.event.starts_at), r.number or 0))
    return rows


def series_statistics(
    session: Session, series: Series, year: int | None = None, now=None, *, latest=True
) -> Statistics:
    """The totals of every fiscal year and the meetings of one: ``year``, or the latest with
    figures when ``year`` is None and ``latest`` (``latest=False``: all years, no meetings).

    A meeting is counted when it has saved figures (imported or saved from the portal), when
    it is cancelled, or when it is over and has registrations (counted live). Drafts never
    are. The same few statements however long the history.
    """
    now = now or utcnow()
    zones = _zones(session, series)
    unreported = _unreported(session, series, now)
    numbers = Numbers()
    fiscal_years = _fiscal_year_totals(session, zones, unreported, series, numbers) if zones else []
    known = {fy.year: fy for fy in fiscal_years}
    if year not in known:
        year = fiscal_years[-1].year if (latest and fiscal_years) else None
    # The runs of missing numbers are looked for only when some number is missing.
    missing = _missing(session, series, unreported) if numbers.gaps else []
    stats = Statistics(
        series=series, rows=[], totals=Totals(), fiscal_years=fiscal_years, missing=missing
    )
    if year is None:
        stats.totals = stats.overall
        return stats
    before = sum(fy.participants for fy in fiscal_years if fy.year < year)
    rows = _meetings_of_year(session, series, zones, year, unreported)
    _list_sizes(session, series, rows)
    cumulative = before
    for row in rows:
        cumulative += row.figures.participants
        row.cumulative = cumulative
        stats.totals.add(row.figures, cumulative)
    stats.rows = rows
    stats.selected_year = year
    return stats


def next_meeting_end(session: Session, series: Series, now=None):
    """When the statistics change by time alone: the next end of one of the series' meetings
    (an ended meeting without saved figures is counted live from then on); None if none."""
    now = now or utcnow()
    when = session.scalar(
        sa.select(sa.func.min(Event.ends_at)).where(*_of_series(series), Event.ends_at >= now)
    )
    return as_utc(when) if when is not None else None


HISTORY_CHUNK = 500  # meetings read (and their list sizes looked up) at a time


def history_rows(session: Session, series: Series, now=None) -> Iterator[MeetingRow]:
    """Every meeting with figures, in order, with cumulative participants, read in chunks
    (the CSV of the whole history streams these)."""
    now = now or utcnow()
    unreported = sorted(
        _unreported(session, series, now), key=lambda r: (as_utc(r.event.starts_at), r.number or 0)
    )
    stmt = (
        sa.select(Event, MeetingAttendance)
        .join(MeetingAttendance, MeetingAttendance.event_id == Event.id)
        .where(*_of_series(series))
        .order_by(Event.starts_at, Event.number)
        .options(load_only(*_SHOWN), lazyload(Event.series))
        .execution_options(yield_per=HISTORY_CHUNK)
    )
    cumulative = 0
    pending = iter(unreported)
    waiting = next(pending, None)
    chunk: list[MeetingRow] = []
    history = list_history(session, series)

    def flush(rows: list[MeetingRow]):
        nonlocal cumulative
        _list_sizes(session, series, rows, history)
        for row in rows:
            cumulative += row.figures.participants
            row.cumulative = cumulative
        return rows

    for event, figures in session.execute(stmt):
        while waiting is not None and (
            (as_utc(waiting.event.starts_at), waiting.number or 0)
            <= (as_utc(event.starts_at), event.number or 0)
        ):
            chunk.append(waiting)
            waiting = next(pending, None)
        day = event_day(event)
        chunk.append(
            MeetingRow(
                event=event, figures=Figures.of(figures), day=day, fiscal_year=fiscal_year(day)
            )
        )
        if len(chunk) >= HISTORY_CHUNK:
            yield from flush(chunk)
            chunk = []
    while waiting is not None:
        chunk.append(waiting)
        waiting = next(pending, None)
    yield from flush(chunk)
