"""Small factories for tests: each makes one row with sensible defaults and returns it."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from itertools import count

import sqlalchemy as sa

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

_seq = count(1)
PASSWORD = "correct horse battery"


def series(session, kind: str = "study_group", **kw) -> Series:
    n = next(_seq)
    values = {
        "study_group": dict(
            default_language="ja",
            currency="JPY",
            timezone="Asia/Tokyo",
            name=BilingualText(ja="レアメタル研究会", en="Rare Metal Study Group"),
        ),
        "workshop": dict(
            default_language="en",
            currency="USD",
            timezone="America/New_York",
            name=BilingualText(ja="ワークショップ", en="Reactive Metal Workshop"),
        ),
    }[kind]
    values.update(slug=f"{kind.replace('_', '-')}-{n}", kind=SeriesKind(kind))
    values.update(kw)
    s = Series(**values)
    session.add(s)
    session.flush()
    return s


def event(session, series_obj: Series | None = None, **kw) -> Event:
    series_obj = series_obj or series(session)
    n = next(_seq)
    start = kw.pop("starts_at", utcnow().replace(microsecond=0) + timedelta(days=30))
    values = dict(
        series_id=series_obj.id,
        number=n,
        slug=f"event-{n}",
        title=BilingualText(ja=f"第{n}回 研究会", en=f"Meeting {n}"),
        description=BilingualText(ja="説明", en="Description"),
        starts_at=start,
        ends_at=start + timedelta(hours=3),
        timezone=series_obj.timezone,
        venue=BilingualText(ja="会場", en="Venue"),
        format=EventFormat.hybrid,
        capacity_onsite=280,
        capacity_online=1000,
        status=EventStatus.open,
    )
    values.update(kw)
    e = Event(**values)
    session.add(e)
    session.flush()
    return e


def person(session, **kw) -> Person:
    n = next(_seq)
    values = dict(
        family_name="山田",
        given_name=f"太郎{n}",
        family_name_kana="やまだ",
        given_name_kana="たろう",
        romanized_name=f"Taro Yamada {n}",
        email=f"person{n}@example.org",
        affiliation="架空金属",
        sector=Sector.company,
        country="JP",
        preferred_language="ja",
    )
    values.update(kw)
    p = Person(**values)
    session.add(p)
    session.flush()
    return p


def user(
    session,
    email: str | None = None,
    password: str = PASSWORD,
    verified: bool = True,
    is_admin: bool = False,
    roles: tuple = (),
    **person_kw,
) -> User:
    p = person(session, **({"email": email} if email else {}), **person_kw)
    u = User(
        person_id=p.id,
        email=(email or p.email).lower(),
        password_hash=hash_password(password),
        email_verified_at=utcnow() if verified else None,
        is_admin=is_admin,
    )
    session.add(u)
    session.flush()
    for role, series_obj in roles:
        session.add(
            UserRole(user_id=u.id, role=Role(role), series_id=series_obj.id if series_obj else None)
        )
    session.flush()
    return u


def talk(session, event_obj: Event, speaker: Person | None = None, **kw) -> Talk:
    values = dict(
        event_id=event_obj.id,
        speaker_id=speaker.id if speaker else None,
        title=BilingualText(ja="講演", en="Talk"),
        position=1,
        language="ja",
    )
    values.update(kw)
    t = Talk(**values)
    session.add(t)
    session.flush()
    return t


def enable(session, event_obj: Event, plugin: str, **settings) -> EventPlugin | SeriesPlugin:
    """Switch a plugin on for the event, or a series plugin (membership, archive,
    attendance) for the event's series, with these settings."""
    if _scope(plugin) == "series":
        return enable_for_series(session, event_obj.series, plugin, **settings)
    row = EventPlugin(event_id=event_obj.id, plugin=plugin, enabled=True, settings=settings)
    session.add(row)
    session.flush()
    return row


def _scope(plugin: str) -> str:
    from flask import has_app_context

    from portal import plugins

    if has_app_context():
        return plugins.scope(plugin)
    try:
        return getattr(importlib.import_module(f"plugins.{plugin}"), "scope", "event")
    except ModuleNotFoundError:  # a test's own plugin, not a built-in one
        return "event"


def enable_for_series(session, series_obj: Series, plugin: str, **settings) -> SeriesPlugin:
    row = session.scalar(
        sa.select(SeriesPlugin).where(
            SeriesPlugin.series_id == series_obj.id, SeriesPlugin.plugin == plugin
        )
    )
    if row is None:
        row = SeriesPlugin(series_id=series_obj.id, plugin=plugin, settings={})
        session.add(row)
    row.enabled = True
    row.settings = {**(row.settings or {}), **settings}
    session.flush()
    return row


def at(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)
