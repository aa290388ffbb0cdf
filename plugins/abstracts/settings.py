"""The call's settings (``CallSettings``): dates, presentation types, topics, limits, review
criteria and scale, read from the plugin settings of the event and saved back through
``portal.plugins``.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugins.abstracts.states import PLUGIN, TYPE_LABELS
from portal import audit, plugins
from portal.db import utcnow
from portal.events.models import Event
from portal.i18n import (
    BilingualText,
)
from portal.localtime import parse_local
from portal.text import truthy


@dataclass(frozen=True)
class Choice:
    key: str
    label: BilingualText

    def get(self, lang: str | None = None) -> str:
        return self.label.get(lang) or self.key


@dataclass(frozen=True)
class CallSettings:
    opens_at: datetime | None
    closes_at: datetime | None
    opens_local: str
    closes_local: str
    word_limit: int
    topics: list[Choice]
    presentation_types: list[str]
    allow_pdf: bool
    instructions: BilingualText
    criteria: list[Choice]
    scale_max: int
    anonymised: bool
    reviewers_per_abstract: int

    def topic_label(self, key: str, lang: str | None = None) -> str:
        for topic in self.topics:
            if topic.key == key:
                return topic.get(lang)
        return key

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.opens_at is not None and now < self.opens_at:
            return False
        return not self.deadline_passed(now)

    def deadline_passed(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and (now or utcnow()) >= self.closes_at


def slug_key(text: str, fallback: str) -> str:
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:60]
    return key or fallback


def _as_list(value) -> list:
    """A list from the stored value; text (from a generic settings form) is read leniently."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] in "[(":
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, list | tuple):
                return list(parsed)
        return [p.strip() for p in re.split(r"[;\n]", text) if p.strip()]
    return []


def _choices(value, prefix: str) -> list[Choice]:
    """Topics or criteria: dicts {"key", "ja", "en"} or text "English | 日本語"."""
    result: list[Choice] = []
    seen: set[str] = set()
    for index, item in enumerate(_as_list(value), start=1):
        if isinstance(item, dict):
            en, ja = str(item.get("en") or ""), str(item.get("ja") or "")
            key = str(item.get("key") or "") or slug_key(en or ja, f"{prefix}{index}")
        else:
            en, _sep, ja = str(item).partition("|")
            en, ja = en.strip(), ja.strip()
            key = slug_key(en or ja, f"{prefix}{index}")
        if not (en or ja) or key in seen:
            continue
        seen.add(key)
        result.append(Choice(key=key, label=BilingualText(ja=ja, en=en)))
    return result


def _int(value, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


def call_settings(event: Event) -> CallSettings:
    raw = plugins.settings(event, PLUGIN)
    types = [t for t in _as_list(raw.get("presentation_types")) if t in TYPE_LABELS]
    return CallSettings(
        opens_at=parse_local(raw.get("opens_at"), event.timezone),
        closes_at=parse_local(raw.get("closes_at"), event.timezone),
        opens_local=str(raw.get("opens_at") or ""),
        closes_local=str(raw.get("closes_at") or ""),
        word_limit=_int(raw.get("word_limit"), 300, 0, 100_000),
        topics=_choices(raw.get("topics"), "topic-"),
        presentation_types=types or ["oral"],
        allow_pdf=truthy(raw.get("allow_pdf")),
        instructions=BilingualText(
            ja=str(raw.get("instructions_ja") or ""), en=str(raw.get("instructions_en") or "")
        ),
        criteria=_choices(raw.get("criteria"), "criterion-")
        or _choices([{"key": "overall", "ja": "総合評価", "en": "Overall"}], "criterion-"),
        scale_max=_int(raw.get("scale_max"), 5, 2, 100),
        anonymised=truthy(raw.get("anonymised_reviews")),
        reviewers_per_abstract=_int(raw.get("reviewers_per_abstract"), 2, 1, 20),
    )


def update_settings(session: Session, event: Event, values: dict, actor) -> None:
    """Save the call's settings for the event (the plugin's row; audited)."""
    from portal.events.models import EventPlugin

    row = session.scalar(
        sa.select(EventPlugin).where(EventPlugin.event_id == event.id, EventPlugin.plugin == PLUGIN)
    )
    if row is None:
        row = EventPlugin(event_id=event.id, plugin=PLUGIN, enabled=False, settings={})
        session.add(row)
    merged = dict(row.settings or {})
    merged.update(values)
    row.settings = merged
    plugins.forget(event)
    audit.record(session, actor, "event", event.id, "abstracts.settings", keys=sorted(values))
