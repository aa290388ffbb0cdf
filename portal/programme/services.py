"""The programme: one function per change, the timetable query, clashes and exports.

- ``save_item`` / ``delete_item``: sessions (with chair and room), breaks, the reception.
- ``place_talk`` / ``unplace_talk``: a talk in a session with its start and end.
- ``start_from_talks``: the study group's usual meeting (one session with its talks, then the
  exchange meeting when its plugin is on), so both series share one code path.
- ``timetable``: the event's items and placed talks in two queries, by day and room.
- ``clashes``: a speaker in two places, a room used twice, a talk outside its session.
- ``frab_json`` (the Frab/pretalx schedule JSON), ``ics``.
None commits; each writes an audit entry (subject ``event``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from portal import audit, plugins
from portal.accounts.models import Person
from portal.errors import UserError
from portal.events.models import Event, Talk
from portal.i18n import BilingualText, format_person_name
from portal.programme.models import ItemKind, ProgrammeItem, TalkPlacement

KIND_LABELS = {
    ItemKind.session: _l("Session"),
    ItemKind.break_: _l("Break"),
    ItemKind.reception: _l("Reception"),
    ItemKind.other: _l("Other"),
}


class ProgrammeError(UserError):
    """A refused change; ``message`` is translated, ``field`` names the form field."""


# -- changes ---------------------------------------------------------------------------------


def _check_times(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is None:
        raise ProgrammeError(_l("Give the start time."), "starts_at")
    if ends_at is None:
        raise ProgrammeError(_l("Give the end time."), "ends_at")
    if ends_at <= starts_at:
        raise ProgrammeError(_l("The end must be after the start."), "ends_at")
    if ends_at - starts_at > timedelta(hours=24):
        raise ProgrammeError(_l("An item lasts at most 24 hours."), "ends_at")


def save_item(
    session: Session,
    event: Event,
    item: ProgrammeItem | None = None,
    *,
    kind,
    title: BilingualText,
    room: str = "",
    chair: Person | None = None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    actor,
) -> ProgrammeItem:
    """Add or change a session, break or reception."""
    try:
        kind = ItemKind(kind)
    except ValueError:
        raise ProgrammeError(_l("Choose what kind of item this is."), "kind") from None
    _check_times(starts_at, ends_at)
    if kind == ItemKind.session and not title:
        raise ProgrammeError(_l("A session needs a title."), "title_ja")
    if item is None:
        item = ProgrammeItem(event_id=event.id)
        session.add(item)
        action = "programme_item_added"
    else:
        if item.event_id != event.id:
            raise ProgrammeError(_l("This item belongs to another event."))
        action = "programme_item_changed"
    item.kind = kind
    item.title = title
    item.room = (room or "").strip()[:100]
    item.chair_id = chair.id if chair is not None and kind == ItemKind.session else None
    item.starts_at = starts_at
    item.ends_at = ends_at
    session.flush()
    audit.record(session, actor, "event", event.id, action, item=item.id, kind=kind.value)
    return item


def delete_item(session: Session, event: Event, item: ProgrammeItem, *, actor) -> None:
    """Remove an item; its talks go back to the unplaced list (their times are cleared)."""
    if item.event_id != event.id:
        raise ProgrammeError(_l("This item belongs to another event."))
    for placement in session.scalars(
        sa.select(TalkPlacement)
        .where(TalkPlacement.item_id == item.id)
        .options(joinedload(TalkPlacement.talk))
    ):
        placement.talk.starts_at = placement.talk.ends_at = None
        session.delete(placement)
    session.delete(item)
    session.flush()
    audit.record(session, actor, "event", event.id, "programme_item_deleted", item=item.id)


def place_talk(
    session: Session,
    event: Event,
    talk: Talk,
    item: ProgrammeItem,
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    actor,
) -> TalkPlacement:
    """Put a talk (an invited talk or an accepted abstract's) in a session, or move it."""
    if talk.event_id != event.id or item.event_id != event.id:
        raise ProgrammeError(_l("This talk or session belongs to another event."))
    if item.kind != ItemKind.session:
        raise ProgrammeError(_l("Talks are placed in sessions."), "item")
    _check_times(starts_at, ends_at)
    placement = session.scalar(sa.select(TalkPlacement).where(TalkPlacement.talk_id == talk.id))
    if placement is None:
        placement = TalkPlacement(talk_id=talk.id, item_id=item.id)
        session.add(placement)
    placement.item_id = item.id
    talk.starts_at, talk.ends_at = starts_at, ends_at
    session.flush()
    audit.record(
        session,
        actor,
        "event",
        event.id,
        "talk_placed",
        talk=talk.id,
        item=item.id,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
    )
    return placement


def unplace_talk(session: Session, event: Event, talk: Talk, *, actor) -> None:
    if talk.event_id != event.id:
        raise ProgrammeError(_l("This talk belongs to another event."))
    placement = session.scalar(sa.select(TalkPlacement).where(TalkPlacement.talk_id == talk.id))
    if placement is not None:
        session.delete(placement)
    talk.starts_at = talk.ends_at = None
    session.flush()
    audit.record(session, actor, "event", event.id, "talk_unplaced", talk=talk.id)


def start_from_talks(session: Session, event: Event, *, actor) -> list[ProgrammeItem]:
    """The study group's meeting as a programme: one session over the event with its talks in
    order (their own times, else the event shared out evenly), then the exchange meeting (two
    hours after the end) when its plugin is on. Only for an event without items yet."""
    if session.scalar(sa.select(ProgrammeItem.id).where(ProgrammeItem.event_id == event.id)):
        raise ProgrammeError(_l("The programme already has items."))
    main = save_item(
        session,
        event,
        kind=ItemKind.session,
        title=BilingualText(ja=event.title.get("ja"), en=event.title.get("en")),
        room=event.venue.get(event.series.default_language),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        actor=actor,
    )
    talks = list(
        session.scalars(
            sa.select(Talk).where(Talk.event_id == event.id).order_by(Talk.position, Talk.id)
        )
    )
    if talks:
        share = (event.ends_at - event.starts_at) / len(talks)
        for i, talk in enumerate(talks):
            start = talk.starts_at or event.starts_at + share * i
            end = talk.ends_at or start + share
            place_talk(session, event, talk, main, starts_at=start, ends_at=end, actor=actor)
    items = [main]
    if plugins.is_enabled(event, "exchange_meeting"):
        items.append(
            save_item(
                session,
                event,
                kind=ItemKind.reception,
                title=BilingualText(ja="意見交換会", en="Exchange meeting"),
                starts_at=event.ends_at,
                ends_at=event.ends_at + timedelta(hours=2),
                actor=actor,
            )
        )
    return items


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """An item with its placed talks (sorted by start)."""

    item: ProgrammeItem
    talks: list[Talk] = field(default_factory=list)


@dataclass
class Day:
    date: date
    entries: list[Entry]

    @property
    def rooms(self) -> list[str]:
        return sorted({e.item.room for e in self.entries if e.item.room})


@dataclass
class Timetable:
    event: Event
    entries: list[Entry]
    unplaced: list[Talk]

    @property
    def days(self) -> list[Day]:
        zone = ZoneInfo(self.event.timezone)
        by_day: dict[date, list[Entry]] = defaultdict(list)
        for entry in self.entries:
            by_day[entry.item.starts_at.astimezone(zone).date()].append(entry)
        return [Day(d, by_day[d]) for d in sorted(by_day)]

    @property
    def rooms(self) -> list[str]:
        return sorted({e.item.room for e in self.entries if e.item.room})

    @property
    def is_empty(self) -> bool:
        return not self.entries


def timetable(session: Session, event: Event) -> Timetable:
    """Items by start (then room), each with its talks by start: two queries whatever the
    size, plus one for the talks not placed yet."""
    items = list(
        session.scalars(
            sa.select(ProgrammeItem)
            .where(ProgrammeItem.event_id == event.id)
            .order_by(ProgrammeItem.starts_at, ProgrammeItem.room, ProgrammeItem.id)
        ).unique()
    )
    entries = {item.id: Entry(item) for item in items}
    placed_ids = set()
    if items:
        for placement in session.scalars(
            sa.select(TalkPlacement)
            .where(TalkPlacement.item_id.in_(entries))
            .options(joinedload(TalkPlacement.talk).joinedload(Talk.speaker))
        ).unique():
            entries[placement.item_id].talks.append(placement.talk)
            placed_ids.add(placement.talk_id)
    for entry in entries.values():
        entry.talks.sort(key=lambda t: (t.starts_at or entry.item.starts_at, t.position, t.id))
    unplaced = [
        t
        for t in session.scalars(
            sa.select(Talk)
            .where(Talk.event_id == event.id)
            .options(joinedload(Talk.speaker))
            .order_by(Talk.position, Talk.id)
        ).unique()
        if t.id not in placed_ids
    ]
    return Timetable(event, list(entries.values()), unplaced)


# -- clashes ---------------------------------------------------------------------------------


@dataclass
class Clash:
    kind: str  # speaker, room, outside
    message: str
    item_ids: set = field(default_factory=set)
    talk_ids: set = field(default_factory=set)


def _overlap(a_start, a_end, b_start, b_end) -> bool:
    return a_start < b_end and b_start < a_end


def clashes(table: Timetable, lang: str | None = None) -> list[Clash]:
    """A speaker in two places at once (two talks, or a talk while chairing elsewhere), a room
    used by two items at once, a talk outside its session's times; messages in ``lang``."""
    if lang:
        from flask_babel import force_locale

        with force_locale(lang):
            return _clashes(table, lang)
    return _clashes(table, lang)


def _clashes(table: Timetable, lang: str | None) -> list[Clash]:
    from flask_babel import gettext as _

    found: list[Clash] = []
    # Who is where, when: (person, start, end, item, talk or None, label).
    presence = []
    for entry in table.entries:
        item = entry.item
        if item.chair_id:
            presence.append((item.chair, item.starts_at, item.ends_at, item, None))
        for talk in entry.talks:
            if talk.speaker_id and talk.starts_at and talk.ends_at:
                presence.append((talk.speaker, talk.starts_at, talk.ends_at, item, talk))
            if (
                talk.starts_at
                and talk.ends_at
                and (talk.starts_at < item.starts_at or talk.ends_at > item.ends_at)
            ):
                found.append(
                    Clash(
                        "outside",
                        _(
                            "“%(talk)s” runs outside its session “%(session)s”.",
                            talk=talk.title.get(lang, talk.language),
                            session=item.title.get(lang),
                        ),
                        {item.id},
                        {talk.id},
                    )
                )
    for i, (person, start, end, item, talk) in enumerate(presence):
        for other_person, o_start, o_end, o_item, o_talk in presence[i + 1 :]:
            if person.id != other_person.id or not _overlap(start, end, o_start, o_end):
                continue
            if o_item.id == item.id and (talk is None or o_talk is None):
                continue  # chairing the session one speaks in
            found.append(
                Clash(
                    "speaker",
                    _(
                        "%(name)s is in two places at once: “%(first)s” and “%(second)s”.",
                        name=format_person_name(person, lang),
                        first=(
                            talk.title.get(lang, talk.language) if talk else item.title.get(lang)
                        ),
                        second=(
                            o_talk.title.get(lang, o_talk.language)
                            if o_talk
                            else o_item.title.get(lang)
                        ),
                    ),
                    {item.id, o_item.id},
                    {t.id for t in (talk, o_talk) if t is not None},
                )
            )
    items = [e.item for e in table.entries]
    for i, item in enumerate(items):
        for other in items[i + 1 :]:
            if (
                item.room
                and item.room.casefold() == other.room.casefold()
                and _overlap(item.starts_at, item.ends_at, other.starts_at, other.ends_at)
            ):
                found.append(
                    Clash(
                        "room",
                        _(
                            "Room %(room)s is used twice at once: “%(first)s” and “%(second)s”.",
                            room=item.room,
                            first=item.title.get(lang) or str(KIND_LABELS[item.kind]),
                            second=other.title.get(lang) or str(KIND_LABELS[other.kind]),
                        ),
                        {item.id, other.id},
                    )
                )
    return found


def chair_candidates(session: Session, event: Event) -> list[Person]:
    """Speakers of the event and people registered for it, by name (two queries)."""
    from portal.registration.models import Registration, RegistrationState

    ids = set(
        session.scalars(
            sa.select(Talk.speaker_id).where(
                Talk.event_id == event.id, Talk.speaker_id.is_not(None)
            )
        )
    )
    ids |= set(
        session.scalars(
            sa.select(Registration.person_id).where(
                Registration.event_id == event.id,
                Registration.state.in_((RegistrationState.confirmed, RegistrationState.attended)),
            )
        )
    )
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(Person)
            .where(Person.id.in_(ids))
            .order_by(Person.family_name_kana, Person.romanized_name, Person.id)
        )
    )


# -- exports ---------------------------------------------------------------------------------


def _hhmm(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _guid(kind: str, id_: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rare-metal-portal/{kind}/{id_}"))


def frab_json(table: Timetable, lang: str, base_url: str, event_url: str) -> dict:
    """The schedule in the Frab/pretalx JSON shape (``schedule.conference.days[].rooms``), which
    schedule apps (Giggity, ConfClerk, the pretalx widget …) read."""
    event = table.event
    zone = ZoneInfo(event.timezone)
    default = event.series.default_language
    days = []
    for index, day in enumerate(table.days, start=1):
        rooms: dict[str, list] = defaultdict(list)
        starts = [e.item.starts_at for e in day.entries]
        ends = [e.item.ends_at for e in day.entries]
        for entry in day.entries:
            item = entry.item
            room = item.room or event.venue.get(lang, default) or "—"
            if entry.talks:
                for talk in entry.talks:
                    start = (talk.starts_at or item.starts_at).astimezone(zone)
                    end = (talk.ends_at or item.ends_at).astimezone(zone)
                    rooms[room].append(
                        {
                            "id": talk.id,
                            "guid": _guid("talk", talk.id),
                            "logo": None,
                            "date": start.isoformat(),
                            "start": start.strftime("%H:%M"),
                            "duration": _hhmm(end - start),
                            "room": room,
                            "slug": f"{event.slug}-talk-{talk.id}",
                            "url": event_url,
                            "title": talk.title.get(lang, talk.language),
                            "subtitle": "",
                            "track": item.title.get(lang, default),
                            "type": "talk",
                            "language": talk.language,
                            "abstract": talk.abstract.get(lang, talk.language),
                            "description": "",
                            "recording_license": "",
                            "do_not_record": True,
                            "persons": (
                                [
                                    {
                                        "id": talk.speaker.id,
                                        "guid": _guid("person", talk.speaker.id),
                                        "public_name": format_person_name(talk.speaker, lang),
                                    }
                                ]
                                if talk.speaker
                                else []
                            ),
                            "links": [],
                            "attachments": [],
                        }
                    )
            else:
                start = item.starts_at.astimezone(zone)
                rooms[room].append(
                    {
                        "id": 1_000_000 + item.id,
                        "guid": _guid("item", item.id),
                        "logo": None,
                        "date": start.isoformat(),
                        "start": start.strftime("%H:%M"),
                        "duration": _hhmm(item.ends_at - item.starts_at),
                        "room": room,
                        "slug": f"{event.slug}-item-{item.id}",
                        "url": event_url,
                        "title": item.title.get(lang, default) or str(KIND_LABELS[item.kind]),
                        "subtitle": "",
                        "track": None,
                        "type": item.kind.value,
                        "language": lang,
                        "abstract": "",
                        "description": "",
                        "recording_license": "",
                        "do_not_record": True,
                        "persons": (
                            [
                                {
                                    "id": item.chair.id,
                                    "public_name": format_person_name(item.chair, lang),
                                }
                            ]
                            if item.chair
                            else []
                        ),
                        "links": [],
                        "attachments": [],
                    }
                )
        days.append(
            {
                "index": index,
                "date": day.date.isoformat(),
                "day_start": min(starts).astimezone(zone).isoformat(),
                "day_end": max(ends).astimezone(zone).isoformat(),
                "rooms": dict(rooms),
            }
        )
    return {
        "$schema": "https://c3voc.de/schedule/schema.json",
        "generator": {"name": "rare-metal-portal", "version": "1"},
        "schedule": {
            "version": _version(table),
            "base_url": base_url,
            "conference": {
                "acronym": event.slug,
                "title": event.title.get(lang, default),
                "start": event.starts_at.astimezone(zone).date().isoformat(),
                "end": event.ends_at.astimezone(zone).date().isoformat(),
                "daysCount": len(days),
                "timeslot_duration": "00:05",
                "time_zone_name": event.timezone,
                "url": event_url,
                "rooms": [
                    {"name": r, "guid": _guid("room", hash(r) & 0xFFFFFFF)} for r in table.rooms
                ],
                "days": days,
            },
        },
    }


def _version(table: Timetable) -> str:
    """Changes whenever an item or a talk time changes (schedule apps compare it)."""
    stamps = [e.item.starts_at.isoformat() + e.item.ends_at.isoformat() for e in table.entries]
    stamps += [f"{t.id}{t.starts_at}{t.ends_at}" for e in table.entries for t in e.talks]
    return uuid.uuid5(uuid.NAMESPACE_OID, "|".join(stamps)).hex[:12]


def ics(table: Timetable, lang: str, event_url: str) -> bytes:
    """Every talk and item as a VEVENT in the event's zone."""
    import icalendar

    from portal.db import utcnow

    event = table.event
    zone = ZoneInfo(event.timezone)
    default = event.series.default_language
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Rare Metal Portal//programme//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", event.title.get(lang, default))
    stamp = utcnow()
    for entry in table.entries:
        item = entry.item
        location = item.room or event.venue.get(lang, default)
        rows = entry.talks or [None]
        for talk in rows:
            vevent = icalendar.Event()
            if talk is None:
                vevent.add("uid", f"programme-item-{item.id}@rare-metal-portal")
                vevent.add("summary", item.title.get(lang, default) or str(KIND_LABELS[item.kind]))
                start, end = item.starts_at, item.ends_at
            else:
                vevent.add("uid", f"talk-{talk.id}@rare-metal-portal")
                title = talk.title.get(lang, talk.language)
                if talk.speaker:
                    title = f"{title} — {format_person_name(talk.speaker, lang)}"
                vevent.add("summary", title)
                start, end = talk.starts_at or item.starts_at, talk.ends_at or item.ends_at
            vevent.add("dtstamp", stamp)
            vevent.add("dtstart", start.astimezone(zone))
            vevent.add("dtend", end.astimezone(zone))
            if location:
                vevent.add("location", location)
            vevent.add("url", event_url)
            cal.add_component(vevent)
    cal.add_missing_timezones()
    return cal.to_ical()
