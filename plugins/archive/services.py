"""The lecture archive: who may see and upload, adding and removing material, the access
log, browsing and search.

Who sees the material of a talk (written down once):
- administrators, and organisers of the talk's series;
- the talk's speaker (the logged-in person who is ``talk.speaker``), for their own talks;
- members of the series in the current fiscal year: the app-wide ``member_status`` hook
  answers (the membership plugin); where no plugin answers, the ``member`` role of the series.
Everyone else (also visitors who are not logged in) sees that the material exists, its titles
and types, and how to get access, but no file or link. Every request for a file or a link
goes through ``open_item`` in the views, is checked each time and logged in
``ArchiveAccessLog``.

Who uploads: the talk's speaker and the series' organisers (and administrators).

Which talks are in the archive: talks with material whose event is not a draft and has the
``archive`` plugin switched on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from plugins.archive import files
from plugins.archive.models import ArchiveAccessLog, ArchiveItem, ItemKind
from portal import audit, plugins
from portal.accounts.models import Person, Role
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Series, SeriesPlugin, Talk
from portal.i18n import BilingualText
from portal.localtime import as_utc, years_case
from portal.text import LIKE_ESCAPE, like_pattern

PLUGIN = "archive"
DEFAULT_MAX_FILE_MB = 50


class ArchiveError(UserError):
    """A change that is not possible; ``message`` is translated for the form."""


# -- who may do what -------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What a user may do with a series' archive; ``reason`` names why (for the log)."""

    sees_all: bool  # administrators, organisers, members
    reason: str  # admin, organiser, member, anonymous, none
    person_id: int | None

    def sees(self, talk: Talk) -> bool:
        return self.sees_all or (self.person_id is not None and talk.speaker_id == self.person_id)

    def why(self, talk: Talk) -> str:
        if self.sees_all:
            return self.reason
        if self.person_id is not None and talk.speaker_id == self.person_id:
            return "speaker"
        return self.reason


def is_authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_member(user, series: Series) -> bool:
    """The app-wide ``member_status`` hook decides; without an answer, the ``member`` role."""
    if not is_authenticated(user):
        return False
    answer = plugins.manager().hook.member_status(user=user, series=series)
    if answer is not None:
        return bool(answer)
    return user.has_role(Role.member, series.id) and not user.is_admin


def access(user, series: Series) -> Access:
    if not is_authenticated(user):
        return Access(False, "anonymous", None)
    if user.is_admin:
        return Access(True, "admin", user.person_id)
    if user.is_organiser_of(series):
        return Access(True, "organiser", user.person_id)
    if is_member(user, series):
        return Access(True, "member", user.person_id)
    return Access(False, "none", user.person_id)


def can_upload(user, talk: Talk, series: Series) -> bool:
    if not is_authenticated(user):
        return False
    return user.is_organiser_of(series) or (
        talk.speaker_id is not None and talk.speaker_id == user.person_id
    )


def max_file_mb(event: Event) -> float:
    value = plugins.settings(event, PLUGIN).get("max_file_mb", DEFAULT_MAX_FILE_MB)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = DEFAULT_MAX_FILE_MB
    return value if value > 0 else DEFAULT_MAX_FILE_MB


def max_file_bytes(event: Event) -> int:
    return int(max_file_mb(event) * 1024 * 1024)


# -- changes ---------------------------------------------------------------------------------


def _title(title: BilingualText | None, fallback: str) -> BilingualText:
    title = title or BilingualText()
    return title if title else BilingualText(ja=fallback, en=fallback)


def safe_filename(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip()
    return name[:200] or "file"


def add_file(
    session: Session,
    talk: Talk,
    data: bytes,
    filename: str,
    actor,
    title: BilingualText | None = None,
    max_bytes: int | None = None,
) -> ArchiveItem:
    """Check the file by content and size, read its text, store it, add the item."""
    limit = max_bytes if max_bytes is not None else DEFAULT_MAX_FILE_MB * 1024 * 1024
    if len(data) > limit:
        raise ArchiveError(files.too_large(limit / 1024 / 1024).message, field="file")
    try:
        checked = files.check(data)
    except files.FileCheckError as exc:
        raise ArchiveError(exc.message, field="file") from exc
    original = safe_filename(filename)
    stored = files.store(session, checked)
    item = ArchiveItem(
        talk_id=talk.id,
        kind=ItemKind.file,
        title=_title(title, original),
        file_type=checked.file_type,
        stored_name=stored,
        original_name=original,
        size=len(data),
        text_key=files.fold(checked.text),
        uploaded_by_id=getattr(actor, "id", None),
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        actor,
        "talk",
        talk.id,
        "archive.file_added",
        item=item.id,
        file_type=checked.file_type.value,
        size=len(data),
    )
    return item


def check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise ArchiveError(
            _l("Enter a web address that starts with https://, for example a video page."),
            field="url",
        )
    return url


def add_link(
    session: Session, talk: Talk, url: str, actor, title: BilingualText | None = None
) -> ArchiveItem:
    url = check_url(url)
    item = ArchiveItem(
        talk_id=talk.id,
        kind=ItemKind.link,
        title=_title(title, urlsplit(url).netloc),
        url=url,
        uploaded_by_id=getattr(actor, "id", None),
    )
    session.add(item)
    session.flush()
    audit.record(session, actor, "talk", talk.id, "archive.link_added", item=item.id)
    return item


def delete_item(session: Session, item: ArchiveItem, actor) -> str | None:
    """Remove an item; returns the stored file name for the caller to delete after commit.
    The access log keeps its rows (with the item's title)."""
    stored = item.stored_name
    audit.record(
        session,
        actor,
        "talk",
        item.talk_id,
        "archive.item_removed",
        item=item.id,
        kind=item.kind.value,
    )
    session.delete(item)
    session.flush()
    return stored


def log_access(item: ArchiveItem, series: Series, user, allowed: bool, reason: str) -> None:
    """Write one access-log row in its own short transaction (also for refused requests,
    and on GET requests, whose session only reads)."""
    maker = current_app.extensions["portal_db"]["sessionmaker"]
    with maker() as session:
        session.add(
            ArchiveAccessLog(
                series_id=series.id,
                item_id=item.id,
                talk_id=item.talk_id,
                user_id=user.id if is_authenticated(user) else None,
                allowed=allowed,
                reason=reason,
                item_title=item.label()[:300],
            )
        )
        session.commit()


# -- queries ---------------------------------------------------------------------------------


def archive_events() -> sa.Select:
    """Ids of the events whose archive is shown: plugin on, not a draft."""
    return sa.select(Event.id).where(
        Event.id.in_(plugins.enabled_events(PLUGIN)), Event.status != EventStatus.draft
    )


def in_series_archive(series: Series) -> tuple:
    """Conditions on ``Event``: a meeting of ``series`` that its archive shows. The same as
    ``Event.id IN archive_events()`` for one series of this series plugin, but a single
    uncorrelated check of the plugin, which the database evaluates once (the nested IN over
    every event of every series cost more to plan than the pages' probes cost to run)."""
    if plugins.scope(PLUGIN) != plugins.SERIES:
        return (Event.series_id == series.id, Event.id.in_(archive_events()))
    switched_on = (
        sa.select(SeriesPlugin.id)
        .where(
            SeriesPlugin.series_id == series.id,
            SeriesPlugin.plugin == PLUGIN,
            SeriesPlugin.enabled.is_(True),
        )
        .exists()
    )
    return (Event.series_id == series.id, Event.status != EventStatus.draft, switched_on)


def _has_items():
    return sa.select(ArchiveItem.id).where(ArchiveItem.talk_id == Talk.id).exists()


def _title_text(lang: str):
    return sa.func.lower(sa.type_coerce(Talk.title, sa.JSON)[lang].as_string())


def query_terms(query: str | None) -> list[str]:
    """The pieces of a query, folded like the stored text; every one must match."""
    return [files.fold(t) for t in (query or "").split() if files.fold(t)][:8]


def _term_matches(term: str, access: Access | None = None):
    """Title, speaker's name or the item titles match; the text of the slides only where the
    reader may open them (``access``; None = everything, for internal use)."""
    pattern = like_pattern(term)
    speaker = (
        sa.select(Person.id)
        .where(
            Person.id == Talk.speaker_id,
            sa.or_(
                sa.func.lower(
                    sa.func.coalesce(Person.family_name, "")
                    + sa.func.coalesce(Person.given_name, "")
                ).like(pattern, escape=LIKE_ESCAPE),
                sa.func.lower(
                    sa.func.coalesce(Person.family_name_kana, "")
                    + sa.func.coalesce(Person.given_name_kana, "")
                ).like(pattern, escape=LIKE_ESCAPE),
                sa.func.lower(sa.func.replace(Person.romanized_name, " ", "")).like(
                    pattern, escape=LIKE_ESCAPE
                ),
            ),
        )
        .exists()
    )
    if access is None or access.sees_all:
        text_visible = sa.true()
    elif access.person_id is not None:
        text_visible = Talk.speaker_id == access.person_id  # their own talks' slides
    else:
        text_visible = sa.false()
    slides = (
        sa.select(ArchiveItem.id)
        .where(
            ArchiveItem.talk_id == Talk.id,
            sa.or_(
                sa.and_(text_visible, ArchiveItem.text_key.like(pattern, escape=LIKE_ESCAPE)),
                sa.func.lower(sa.type_coerce(ArchiveItem.title, sa.JSON)["ja"].as_string()).like(
                    pattern, escape=LIKE_ESCAPE
                ),
                sa.func.lower(sa.type_coerce(ArchiveItem.title, sa.JSON)["en"].as_string()).like(
                    pattern, escape=LIKE_ESCAPE
                ),
            ),
        )
        .exists()
    )
    return sa.or_(
        sa.func.replace(_title_text("ja"), " ", "").like(pattern, escape=LIKE_ESCAPE),
        sa.func.replace(_title_text("en"), " ", "").like(pattern, escape=LIKE_ESCAPE),
        speaker,
        slides,
    )


def year_bounds(series: Series, year: int) -> tuple[datetime, datetime]:
    zone = ZoneInfo(series.timezone)
    return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)


def archive_talks(
    series: Series,
    *,
    year: int | None = None,
    speaker_id: int | None = None,
    query: str | None = None,
    event_id: int | None = None,
    access: Access | None = None,
) -> sa.Select:
    """Talks of the series with material, newest meeting first (by meeting). The search
    reads the slides' text only where ``access`` may open them (members-only text stays
    members-only)."""
    stmt = (
        sa.select(Talk)
        .join(Event, Event.id == Talk.event_id)
        .where(*in_series_archive(series), _has_items())
        .options(joinedload(Talk.event), joinedload(Talk.speaker))
        .order_by(Event.starts_at.desc(), Talk.position, Talk.id)
    )
    if year is not None:
        start, end = year_bounds(series, year)
        stmt = stmt.where(Event.starts_at >= start, Event.starts_at < end)
    if speaker_id is not None:
        stmt = stmt.where(Talk.speaker_id == speaker_id)
    if event_id is not None:
        stmt = stmt.where(Event.id == event_id)
    for term in query_terms(query):
        stmt = stmt.where(_term_matches(term, access))
    return stmt


_ITEMS_BY_TALK: list = []


def items_by_talk(session: Session, talk_ids) -> dict[int, list[ArchiveItem]]:
    """The items of the given talks, in one query."""
    found: dict[int, list[ArchiveItem]] = {tid: [] for tid in talk_ids}
    if not found:
        return found
    if not _ITEMS_BY_TALK:  # built once, with an expanding bound parameter
        _ITEMS_BY_TALK.append(
            sa.select(ArchiveItem)
            .where(ArchiveItem.talk_id.in_(sa.bindparam("talk_ids", expanding=True)))
            .order_by(ArchiveItem.kind, ArchiveItem.id)
        )
    rows = session.scalars(_ITEMS_BY_TALK[0], {"talk_ids": list(found)})
    for item in rows:
        found[item.talk_id].append(item)
    return found


MAX_YEAR_PROBES = 200  # calendar years probed one by one; a longer span is grouped


def archive_years(session: Session, series: Series) -> list[int]:
    """Calendar years (in the series' zone) of meetings with material, newest first.

    Two statements whatever the history: the first and the last meeting with material (each
    an ordered walk of the start-time index that stops at the first hit), then one probe per
    calendar year between them (each stops at the year's first meeting with material)
    instead of grouping every meeting by year."""
    with_material = (
        *in_series_archive(series),
        sa.select(ArchiveItem.id)
        .join(Talk, Talk.id == ArchiveItem.talk_id)
        .where(Talk.event_id == Event.id)
        .exists(),
    )

    def end(order):
        stmt = sa.select(Event.starts_at).where(*with_material).order_by(order).limit(1)
        return stmt.scalar_subquery()

    first, last = session.execute(
        sa.select(end(Event.starts_at.asc()), end(Event.starts_at.desc()))
    ).one()
    if first is None:
        return []
    zone = ZoneInfo(series.timezone)
    first_year = as_utc(first).astimezone(zone).year
    last_year = as_utc(last).astimezone(zone).year
    if last_year - first_year > MAX_YEAR_PROBES:  # dates typed wrong: group them instead
        year = years_case(Event.starts_at, {series.timezone: (first_year, last_year)})
        years = session.scalars(sa.select(year).where(*with_material).distinct())
        return sorted((y for y in years if y is not None), reverse=True)
    bounds = sa.union_all(
        *(
            sa.select(
                sa.literal(y, sa.Integer).label("year"),
                sa.literal(start, Event.starts_at.type).label("start"),
                sa.literal(stop, Event.starts_at.type).label("stop"),
            )
            for y in range(first_year, last_year + 1)
            for start, stop in [year_bounds(series, y)]
        )
    ).subquery()
    # The year's first meeting with material (a scalar subquery per year, which stops at the
    # first hit; as EXISTS, PostgreSQL plans a semi join and starts parallel workers for it).
    held = (
        sa.select(Event.id)
        .where(*with_material, Event.starts_at >= bounds.c.start, Event.starts_at < bounds.c.stop)
        .limit(1)
        .scalar_subquery()
    )
    return sorted(session.scalars(sa.select(bounds.c.year).where(held.is_not(None))), reverse=True)


def archive_speakers(series: Series) -> sa.Select:
    """(Person, number of talks with material) for the series, by name.

    People are walked in name order (``ix_people_reading``) and kept when one of their talks
    in the series' archive has material (an EXISTS per person, through the talks' speaker
    index), so a page reads as many people as it skips and shows, not every talk of the
    history grouped by speaker; the talks are counted for the rows shown only."""

    def material_talks(*columns):
        return (
            sa.select(*columns)
            .join(Event, Event.id == Talk.event_id)
            .where(
                Talk.speaker_id == Person.id,
                *in_series_archive(series),
                _has_items(),
            )
        )

    talks = material_talks(sa.func.count(Talk.id)).scalar_subquery().label("talks")
    return (
        sa.select(Person, talks)
        .where(material_talks(Talk.id).exists())
        .order_by(Person.family_name_kana, Person.given_name_kana, Person.romanized_name, Person.id)
    )


def archive_speaker(session: Session, series: Series, person_id: int) -> Person | None:
    """The person when they speak in a talk of the series' archive, else None: the archive
    names its speakers, nobody else."""
    row = session.execute(archive_speakers(series).where(Person.id == person_id)).first()
    return row[0] if row else None


def access_log(series: Series) -> sa.Select:
    return (
        sa.select(ArchiveAccessLog)
        .where(ArchiveAccessLog.series_id == series.id)
        .options(joinedload(ArchiveAccessLog.talk).joinedload(Talk.event))
        .order_by(ArchiveAccessLog.at.desc(), ArchiveAccessLog.id.desc())
    )


# -- personal data ---------------------------------------------------------------------------


def personal_data(session: Session, person: Person) -> dict:
    user = person.user
    if user is None:
        return {"access_log": [], "uploads": []}
    log = session.scalars(
        sa.select(ArchiveAccessLog)
        .where(ArchiveAccessLog.user_id == user.id)
        .order_by(ArchiveAccessLog.at, ArchiveAccessLog.id)
    ).unique()
    uploads = session.scalars(
        sa.select(ArchiveItem).where(ArchiveItem.uploaded_by_id == user.id).order_by(ArchiveItem.id)
    )
    return {
        "access_log": [
            {"at": row.at, "item": row.item_title, "allowed": row.allowed, "reason": row.reason}
            for row in log
        ],
        "uploads": [
            {
                "talk_id": item.talk_id,
                "title": item.title.as_dict(),
                "kind": item.kind.value,
                "original_name": item.original_name,
                "url": item.url,
                "created_at": item.created_at,
            }
            for item in uploads
        ],
    }


def forget_person(session: Session, person: Person) -> None:
    """The log keeps its rows without the person; uploads stay, without who uploaded them."""
    user = person.user
    if user is None:
        return
    session.execute(
        sa.update(ArchiveAccessLog).where(ArchiveAccessLog.user_id == user.id).values(user_id=None)
    )
    session.execute(
        sa.update(ArchiveItem)
        .where(ArchiveItem.uploaded_by_id == user.id)
        .values(uploaded_by_id=None)
    )
    session.flush()
