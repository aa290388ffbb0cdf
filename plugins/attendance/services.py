"""Attendance figures: reading them (per meeting, per series, per fiscal year) and saving them.

``save_figures`` is the one function that creates or changes a ``MeetingAttendance`` row; it
writes an audit entry and does not commit. Everything else only reads. The statistics of a
series take a constant number of queries however many meetings it has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugins.attendance.models import AttendanceSource, MeetingAttendance
from portal import audit, plugins
from portal.announcements.counts import list_size_on, list_sizes
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Series
from portal.localtime import local_date
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


def fiscal_year(day: date) -> int:
    """The Japanese fiscal year (年度) of a day: 2019年度 runs from April 2019 to March 2020."""
    return day.year if day.month >= 4 else day.year - 1


def event_day(event: Event) -> date:
    """The meeting's date in its own time zone."""
    return local_date(event.starts_at, event.timezone)


def _aware(moment):
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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


def _list_sizes(session: Session, series: Series, rows: list) -> None:
    """People on the series' list on each meeting's day, from the list's history (one query);
    meetings before the list was kept in the portal keep their imported figure."""
    sizes = list_sizes(session, series, [row.day for row in rows])
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
        and _aware(event.ends_at) > stamp
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
    cumulative: int = 0

    def add(self, row: MeetingRow) -> None:
        f = row.figures
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
        self.cumulative = row.cumulative

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
    rows: list[MeetingRow]  # the meetings shown (all, or one fiscal year)
    totals: Totals
    fiscal_years: list[FiscalYearTotals]  # every fiscal year with figures
    selected_year: int | None = None
    missing: list[tuple[int, int]] = field(default_factory=list)  # number ranges not recorded

    @property
    def years(self) -> list[int]:
        return [fy.year for fy in self.fiscal_years]

    def by_fiscal_year(self) -> list[tuple[FiscalYearTotals, list[MeetingRow]]]:
        groups = {fy.year: (fy, []) for fy in self.fiscal_years}
        for row in self.rows:
            groups[row.fiscal_year][1].append(row)
        return [group for group in groups.values() if group[1]]


def _missing_ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges = []
    for before, after in zip(numbers, numbers[1:], strict=False):
        if after - before > 1:
            ranges.append((before + 1, after - 1))
    return ranges


def series_statistics(
    session: Session, series: Series, year: int | None = None, now=None
) -> Statistics:
    """Every meeting of the series with figures, in order, with cumulative participants.

    A meeting is in the table when it has saved figures (imported or saved from the portal),
    when it is cancelled, or when it is over and has registrations (counted live). Drafts
    never are. Three queries whatever the number of meetings.
    """
    now = now or utcnow()
    pairs = session.execute(
        sa.select(Event, MeetingAttendance)
        .outerjoin(MeetingAttendance, MeetingAttendance.event_id == Event.id)
        .where(Event.series_id == series.id, Event.status != EventStatus.draft)
        .order_by(Event.starts_at, Event.number)
    ).all()
    unreported = [e for e, row in pairs if row is None and e.ends_at < now]
    live = live_figures(session, unreported) if unreported else {}
    live = live or {}

    rows: list[MeetingRow] = []
    for event, row in pairs:
        if row is not None:
            figures = Figures.of(row)
        elif live.get(event.id) is not None:
            figures = live[event.id]
        elif event.status == EventStatus.cancelled:
            figures = Figures(cancelled=True, source=AttendanceSource.portal.value)
        else:
            continue
        day = event_day(event)
        rows.append(MeetingRow(event=event, figures=figures, day=day, fiscal_year=fiscal_year(day)))

    _list_sizes(session, series, rows)
    cumulative = 0
    years: dict[int, FiscalYearTotals] = {}
    for row in rows:
        cumulative += row.figures.participants
        row.cumulative = cumulative
        years.setdefault(row.fiscal_year, FiscalYearTotals(year=row.fiscal_year)).add(row)

    if year not in years:
        year = None
    shown = [r for r in rows if year is None or r.fiscal_year == year]
    totals = Totals()
    for row in shown:
        totals.add(row)
    numbers = sorted(r.number for r in rows if r.number is not None)
    return Statistics(
        series=series,
        rows=shown,
        totals=totals,
        fiscal_years=[years[y] for y in sorted(years)],
        selected_year=year,
        missing=_missing_ranges(numbers) if year is None else [],
    )
