"""The call for abstracts: settings, queries and one function per state change (none commits).

State changes of an abstract (each checks the move, changes the rows, writes the audit entry
under subject ``abstract``, queues the email and does not commit):

    save_draft · submit · withdraw · reopen
    assign_reviewer · unassign · auto_assign · save_review
    accept_oral · accept_poster · reject · request_revision

States: draft → submitted → (revision_requested → submitted) → accepted_oral | accepted_poster
| rejected; draft, submitted and revision_requested may be withdrawn. Organisers may change a
decision (accept ↔ reject, oral ↔ poster); rejecting an accepted abstract removes its talk.
"""

from __future__ import annotations

import ast
import csv
import io
import math
import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import markdown as markdown_lib
import nh3
import sqlalchemy as sa
from babel.core import get_global
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import Session, joinedload, object_session, selectinload

from plugins.abstracts import files
from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    AbstractEmailText,
    AbstractState,
    Review,
    ReviewAssignment,
)
from portal import audit, plugins
from portal.accounts.models import Person, Role, User, UserRole
from portal.csvexport import safe_cell
from portal.db import utcnow
from portal.events.models import Event, EventStatus, Talk
from portal.i18n import (
    LANGUAGES,
    BilingualText,
    format_datetime,
    format_person_name,
    format_zone,
)
from portal.mail.services import queue_email
from portal.speakers import search as speaker_search
from portal.speakers import services as speakers

PLUGIN = "abstracts"
SUBJECT = "abstract"
MAX_AUTHORS = 30
TITLE_MAX = 300

STATE_LABELS = {
    AbstractState.draft: _l("Draft"),
    AbstractState.submitted: _l("Submitted"),
    AbstractState.revision_requested: _l("Revision requested"),
    AbstractState.accepted_oral: _l("Accepted (oral presentation)"),
    AbstractState.accepted_poster: _l("Accepted (poster presentation)"),
    AbstractState.rejected: _l("Not accepted"),
    AbstractState.withdrawn: _l("Withdrawn"),
}

TYPE_LABELS = {
    "oral": _l("Oral presentation"),
    "poster": _l("Poster presentation"),
}

EDITABLE_STATES = {
    AbstractState.draft,
    AbstractState.submitted,
    AbstractState.revision_requested,
}
UNDER_REVIEW = {AbstractState.submitted, AbstractState.revision_requested}
ACCEPTED = {AbstractState.accepted_oral, AbstractState.accepted_poster}
# What a reviewer still sees of the abstracts assigned to them.
REVIEWER_VISIBLE = UNDER_REVIEW | ACCEPTED
# Which states each decision may follow.
DECISION_FROM = {
    AbstractState.accepted_oral: UNDER_REVIEW
    | {AbstractState.accepted_poster, AbstractState.rejected},
    AbstractState.accepted_poster: UNDER_REVIEW
    | {AbstractState.accepted_oral, AbstractState.rejected},
    AbstractState.rejected: UNDER_REVIEW | ACCEPTED,
    AbstractState.revision_requested: {AbstractState.submitted},
}


class AbstractError(ValueError):
    """A change that is not allowed; ``message`` is translated, ``field`` names the input."""

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


class NotFound(LookupError):
    """The object does not exist for this person (the view answers 404)."""


# -- settings --------------------------------------------------------------------------------


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


def _bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(value)


def parse_local(text: str | None, tz: str) -> datetime | None:
    """An ISO local time in the event's zone ("2025-03-01T23:59") as an aware UTC datetime."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(UTC)


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
        allow_pdf=_bool(raw.get("allow_pdf")),
        instructions=BilingualText(
            ja=str(raw.get("instructions_ja") or ""), en=str(raw.get("instructions_en") or "")
        ),
        criteria=_choices(raw.get("criteria"), "criterion-")
        or _choices([{"key": "overall", "ja": "総合評価", "en": "Overall"}], "criterion-"),
        scale_max=_int(raw.get("scale_max"), 5, 2, 100),
        anonymised=_bool(raw.get("anonymised_reviews")),
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


# -- text ------------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "sup", "sub", "h3", "h4", "h5", "a", "hr",
}  # fmt: skip
_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u31f0-\u31ff]"
)


def render_markdown(text: str | None) -> Markup:
    """Markdown to HTML, sanitised: no scripts, no styles, no raw HTML beyond simple tags."""
    html = markdown_lib.markdown(text or "", extensions=["sane_lists"])
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return Markup(clean)


def plain_text(text: str | None) -> str:
    """The text a reader sees, without Markdown or tags."""
    import html as html_lib

    html = markdown_lib.markdown(text or "")
    return html_lib.unescape(nh3.clean(html, tags=set()))


def word_count(text: str | None) -> int:
    """Latin-script words by spaces; CJK text (no spaces) counts two characters as a word."""
    plain = unicodedata.normalize("NFKC", plain_text(text))
    cjk = len(_CJK.findall(plain))
    rest = _CJK.sub(" ", plain)
    words = sum(1 for token in rest.split() if any(ch.isalnum() for ch in token))
    return words + math.ceil(cjk / 2)


# -- time zones ------------------------------------------------------------------------------

_ZONES_BY_COUNTRY: dict[str, list[str]] | None = None


def country_zone(country: str | None) -> str | None:
    """The time zone of a country that has exactly one (JP → Asia/Tokyo); else None."""
    global _ZONES_BY_COUNTRY
    if _ZONES_BY_COUNTRY is None:
        table: dict[str, list[str]] = {}
        for zone, territory in get_global("zone_territories").items():
            table.setdefault(territory, []).append(zone)
        _ZONES_BY_COUNTRY = table
    zones = _ZONES_BY_COUNTRY.get((country or "").upper(), [])
    if len(zones) != 1:
        return None
    try:
        ZoneInfo(zones[0])
    except ZoneInfoNotFoundError:
        return None
    return zones[0]


def _same_clock(value: datetime, zone_a: str, zone_b: str) -> bool:
    return (
        value.astimezone(ZoneInfo(zone_a)).utcoffset()
        == value.astimezone(ZoneInfo(zone_b)).utcoffset()
    )


def time_lines(value: datetime | None, event: Event, person: Person | None = None) -> list[str]:
    """A moment as people read it: in the event's zone (named), in theirs if known, in UTC."""
    if value is None:
        return []
    lines = [
        _(
            "%(time)s (event time, %(zone)s)",
            time=format_datetime(value, event.timezone),
            zone=format_zone(event.timezone, None, value),
        )
    ]
    zone = country_zone(getattr(person, "country", None)) if person is not None else None
    if zone and zone != event.timezone and not _same_clock(value, zone, event.timezone):
        lines.append(
            _(
                "%(time)s (your time, %(zone)s)",
                time=format_datetime(value, zone),
                zone=format_zone(zone, None, value),
            )
        )
    if not _same_clock(value, "UTC", event.timezone):
        lines.append(format_datetime(value, "UTC"))
    return lines


# -- input -----------------------------------------------------------------------------------


@dataclass
class AuthorInput:
    name: str = ""
    affiliation: str = ""
    email: str = ""
    presenting: bool = False

    @property
    def is_blank(self) -> bool:
        return not (self.name.strip() or self.affiliation.strip() or self.email.strip())


@dataclass
class AbstractInput:
    title: BilingualText = field(default_factory=BilingualText)
    body: BilingualText = field(default_factory=BilingualText)
    language: str = "en"
    topic: str = ""
    presentation_type: str = "oral"
    authors: list[AuthorInput] = field(default_factory=list)
    pdf: files.PdfUpload | None = None
    remove_pdf: bool = False


def problems(data: AbstractInput, settings: CallSettings, submitting: bool) -> dict[str, list]:
    """What is wrong with the input, by field name (empty when all is well).

    A draft needs a title; a submission needs everything, within the word limit.
    """
    found: dict[str, list] = {}

    def add(name: str, message) -> None:
        found.setdefault(name, []).append(message)

    if not (data.title.ja.strip() or data.title.en.strip()):
        add("title_en", _l("Please enter the title in Japanese or in English."))
    for lang in LANGUAGES:
        if len(getattr(data.title, lang)) > TITLE_MAX:
            add(
                f"title_{lang}",
                _l("The title is too long (at most %(max)d characters).", max=TITLE_MAX),
            )
    if data.language not in LANGUAGES:
        add("language", _l("Please choose the language of the presentation."))
    if settings.topics and data.topic and data.topic not in {t.key for t in settings.topics}:
        add("topic", _l("Please choose one of the topics."))
    if data.presentation_type not in settings.presentation_types:
        add("presentation_type", _l("Please choose one of the presentation types."))
    if data.pdf is not None and not settings.allow_pdf:
        add("pdf", _l("This call does not accept attached files."))
    authors = [a for a in data.authors if not a.is_blank]
    if len(authors) > MAX_AUTHORS:
        add("authors", _l("At most %(max)d authors.", max=MAX_AUTHORS))
    for index, author in enumerate(data.authors):
        if not author.is_blank and not author.name.strip():
            add(f"authors-{index}-name", _l("Please enter the author's name."))
    if settings.word_limit:
        for lang in LANGUAGES:
            count = word_count(getattr(data.body, lang))
            if count > settings.word_limit:
                add(
                    f"body_{lang}",
                    _l(
                        "The abstract has %(count)d words; the limit is %(limit)d words.",
                        count=count,
                        limit=settings.word_limit,
                    ),
                )
    if submitting:
        if not (data.body.ja.strip() or data.body.en.strip()):
            add("body_en", _l("Please write the abstract in Japanese or in English."))
        if settings.topics and not data.topic:
            add("topic", _l("Please choose one of the topics."))
        if not authors:
            add("authors", _l("Please enter at least one author."))
        elif sum(1 for a in authors if a.presenting) != 1:
            add("presenting", _l("Please mark exactly one presenting author."))
    return found


def _raise_first(found: dict[str, list]) -> None:
    if found:
        name, messages = next(iter(found.items()))
        raise AbstractError(messages[0], field=name)


# -- authors and speaker records -------------------------------------------------------------


def split_name(name: str) -> dict:
    """A name as typed: Japanese script → family and given name; Latin → romanised name."""
    name = " ".join((name or "").split())
    if _CJK.search(name):
        family, _sep, given = name.partition(" ")
        return {"family_name": family, "given_name": given}
    return {"romanized_name": name}


def _person_by_email(session: Session, email: str) -> Person | None:
    email = (email or "").strip().lower()
    if not email:
        return None
    person = session.scalar(
        sa.select(Person)
        .join(User, User.person_id == Person.id)
        .where(sa.func.lower(User.email) == email, Person.anonymised_at.is_(None))
    )
    if person is None:
        person = session.scalar(
            sa.select(Person)
            .where(sa.func.lower(Person.email) == email, Person.anonymised_at.is_(None))
            .order_by(Person.id)
            .limit(1)
        )
    if person is None:
        return None
    survivor = speakers.resolve(session, person.id)
    return person if survivor == person.id else session.get(Person, survivor)


def _person_by_name(session: Session, name: str) -> Person | None:
    """The one speaker record with exactly this name (None when none or several)."""
    values = split_name(name)
    found = speakers.likely_duplicates_of(session, values)
    probe = Person(
        **{k: values.get(k, "") for k in ("family_name", "given_name", "romanized_name")}
    )
    exact = [
        p
        for p in found
        if p.person.anonymised_at is None
        and (
            (speaker_search.native_name(probe) and p.name_key == speaker_search.native_name(probe))
            or (
                speaker_search.roman_key(probe.romanized_name)
                and p.roman_key == speaker_search.roman_key(probe.romanized_name)
            )
        )
    ]
    return exact[0].person if len(exact) == 1 else None


def link_author(
    session: Session, author: AuthorInput, submitter: Person, actor, create: bool
) -> Person | None:
    """The speaker record for an author: by email, else by an unambiguous name, else new."""
    email = author.email.strip().lower()
    if email and email in {
        (submitter.email or "").lower(),
        (submitter.user.email if submitter.user else "").lower(),
    }:
        return submitter
    person = _person_by_email(session, email) if email else _person_by_name(session, author.name)
    if person is not None or not create:
        return person
    values = dict(split_name(author.name))
    values["email"] = email
    values["preferred_language"] = submitter.preferred_language
    profile = speakers.create_speaker(session, values, actor)
    profile.person.affiliation = author.affiliation.strip()[:200]
    return profile.person


def _set_authors(session: Session, abstract: Abstract, data: AbstractInput, actor, create: bool):
    submitter = abstract.submitter
    abstract.authors.clear()
    session.flush()
    position = 0
    for author in data.authors:
        if author.is_blank:
            continue
        position += 1
        person = link_author(session, author, submitter, actor, create)
        abstract.authors.append(
            AbstractAuthor(
                position=position,
                person_id=person.id if person is not None else None,
                name=" ".join(author.name.split())[:200],
                affiliation=author.affiliation.strip()[:200],
                email=author.email.strip().lower()[:254],
                presenting=bool(author.presenting),
            )
        )


def _apply(session: Session, abstract: Abstract, data: AbstractInput, actor, create: bool):
    abstract.title = BilingualText(ja=data.title.ja.strip(), en=data.title.en.strip())
    abstract.body = BilingualText(ja=data.body.ja.strip(), en=data.body.en.strip())
    abstract.language = data.language
    abstract.topic = data.topic or ""
    abstract.presentation_type = data.presentation_type
    _set_authors(session, abstract, data, actor, create)
    if data.pdf is not None:
        files.remove_after_commit(session, abstract.pdf_name)
        abstract.pdf_name = files.store(session, data.pdf)
        abstract.pdf_filename = data.pdf.filename
        abstract.pdf_size = len(data.pdf.data)
    elif data.remove_pdf and abstract.pdf_name:
        files.remove_after_commit(session, abstract.pdf_name)
        abstract.pdf_name = None
        abstract.pdf_filename = ""
        abstract.pdf_size = None


# -- who may do what -------------------------------------------------------------------------


def is_organiser(user, event: Event) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_organiser_of(event.series))


def is_reviewer(user, event: Event) -> bool:
    return bool(
        getattr(user, "is_authenticated", False) and user.has_role(Role.reviewer, event.series_id)
    )


def organisers_see(abstract: Abstract) -> bool:
    """Organisers see what was submitted once (not drafts, not drafts thrown away)."""
    return abstract.submitted_at is not None


ORGANISERS_SEE = Abstract.submitted_at.is_not(None)


def is_submitter(user, abstract: Abstract) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and abstract.submitter_id is not None
        and abstract.submitter_id == user.person_id
    )


def edit_block(abstract: Abstract, settings: CallSettings, now: datetime | None = None):
    """Why the submitter may not change the abstract now (a translated message), or None."""
    if abstract.state not in EDITABLE_STATES:
        return _l("This abstract can no longer be changed.")
    if abstract.event.status == EventStatus.cancelled:
        return _l("The event has been cancelled.")
    if abstract.reopened or abstract.state == AbstractState.revision_requested:
        return None
    if settings.deadline_passed(now):
        return _l(
            "The deadline has passed, so the abstract can no longer be changed. "
            "Please contact the organisers if you need to change it."
        )
    return None


def can_edit(abstract: Abstract, settings: CallSettings, now: datetime | None = None) -> bool:
    return edit_block(abstract, settings, now) is None


def new_block(event: Event, settings: CallSettings, now: datetime | None = None):
    """Why a new abstract cannot be started now, or None."""
    now = now or utcnow()
    if event.status == EventStatus.cancelled:
        return _l("The event has been cancelled.")
    if settings.opens_at is not None and now < settings.opens_at:
        return _l("The call for abstracts is not open yet.")
    if settings.deadline_passed(now):
        return _l("The deadline for abstracts has passed.")
    return None


# -- emails ----------------------------------------------------------------------------------

EMAIL_KINDS = (
    "submitted",
    "withdrawn",
    "reopened",
    "accepted_oral",
    "accepted_poster",
    "rejected",
    "revision_requested",
    "reviewer_assigned",
)
EMAIL_KIND_LABELS = {
    "submitted": _l("Abstract received"),
    "withdrawn": _l("Abstract withdrawn"),
    "reopened": _l("Abstract reopened for changes"),
    "accepted_oral": _l("Accepted (oral presentation)"),
    "accepted_poster": _l("Accepted (poster presentation)"),
    "rejected": _l("Not accepted"),
    "revision_requested": _l("Revision requested"),
    "reviewer_assigned": _l("Reviewer assigned (to the reviewer)"),
}
DECISION_KINDS = ("accepted_oral", "accepted_poster", "rejected", "revision_requested")
PLACEHOLDERS = ("name", "title", "event", "decision", "note", "link", "deadline")

DEFAULT_SUBJECTS = {
    "submitted": _l("Abstract received: {title}"),
    "withdrawn": _l("Abstract withdrawn: {title}"),
    "reopened": _l("You may change your abstract again: {title}"),
    "accepted_oral": _l("Your abstract has been accepted: {title}"),
    "accepted_poster": _l("Your abstract has been accepted: {title}"),
    "rejected": _l("Decision on your abstract: {title}"),
    "revision_requested": _l("Please revise your abstract: {title}"),
    "reviewer_assigned": _l("An abstract to review: {title}"),
}
DEFAULT_BODIES = {
    "submitted": _l(
        "Dear {name},\n\nThank you for submitting your abstract “{title}” to {event}. "
        "You can change it until the deadline ({deadline}).\n\nYour abstract: {link}"
    ),
    "withdrawn": _l(
        "Dear {name},\n\nYour abstract “{title}” for {event} has been withdrawn.\n\n{link}"
    ),
    "reopened": _l(
        "Dear {name},\n\nThe organisers of {event} have reopened your abstract “{title}”. "
        "You may change it and submit it again.\n\n{link}"
    ),
    "accepted_oral": _l(
        "Dear {name},\n\nWe are pleased to tell you that your abstract “{title}” has been "
        "accepted for {event}: {decision}.\n\n{note}\n\n{link}"
    ),
    "accepted_poster": _l(
        "Dear {name},\n\nWe are pleased to tell you that your abstract “{title}” has been "
        "accepted for {event}: {decision}.\n\n{note}\n\n{link}"
    ),
    "rejected": _l(
        "Dear {name},\n\nThank you for your abstract “{title}”. We regret that we could not "
        "accept it for {event}.\n\n{note}\n\n{link}"
    ),
    "revision_requested": _l(
        "Dear {name},\n\nThe organisers of {event} ask you to revise your abstract “{title}”."
        "\n\n{note}\n\nPlease change it and submit it again: {link}"
    ),
    "reviewer_assigned": _l(
        "Dear {name},\n\nYou have been asked to review an abstract for {event}: “{title}”."
        "\n\n{link}"
    ),
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


def fill(template: str, values: dict) -> str:
    """Replace {known} placeholders; unknown ones and stray braces stay as written."""
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template or ""
    )


def email_texts(session: Session, event: Event) -> dict[str, AbstractEmailText]:
    rows = session.scalars(
        sa.select(AbstractEmailText).where(AbstractEmailText.event_id == event.id)
    )
    return {row.kind: row for row in rows}


def email_wording(session: Session, event: Event, kind: str, lang: str) -> tuple[str, str]:
    """The subject and body template for the language: the organiser's, else the built-in."""
    row = email_texts(session, event).get(kind)
    with force_locale(lang):
        subject = str(DEFAULT_SUBJECTS[kind])
        body = str(DEFAULT_BODIES[kind])
    if row is not None:
        subject = getattr(row.subject, lang) or subject
        body = getattr(row.body, lang) or body
    return subject, body


def save_email_text(
    session: Session, event: Event, kind: str, subject: BilingualText, body: BilingualText, actor
) -> AbstractEmailText:
    """An organiser's wording of one email (empty languages fall back to the built-in text)."""
    if kind not in EMAIL_KINDS:
        raise AbstractError(_l("Unknown email."))
    row = email_texts(session, event).get(kind)
    if row is None:
        row = AbstractEmailText(event_id=event.id, kind=kind)
        session.add(row)
    row.subject = subject
    row.body = body
    audit.record(session, actor, "event", event.id, "abstracts.email_text", kind=kind)
    return row


def _recipient(person: Person | None) -> tuple[str | None, str]:
    if person is None or person.anonymised_at is not None:
        return None, "ja"
    address = person.user.email if person.user is not None else person.email
    lang = person.preferred_language if person.preferred_language in LANGUAGES else "ja"
    return address, lang


def _notify(
    session: Session,
    abstract: Abstract,
    kind: str,
    person: Person | None,
    link: str,
    note: str = "",
) -> None:
    address, lang = _recipient(person)
    if not address:
        return
    event = abstract.event
    settings = call_settings(event)
    subject_t, body_t = email_wording(session, event, kind, lang)
    with force_locale(lang):
        decision = str(STATE_LABELS[AbstractState(kind)]) if kind in DECISION_KINDS else ""
        values = {
            "name": format_person_name(person, lang),
            "title": abstract.title.get(lang, abstract.language),
            "event": event.title.get(lang, event.series.default_language),
            "decision": decision,
            "note": note or "",
            "link": link,
            "deadline": format_datetime(settings.closes_at, event.timezone, lang)
            if settings.closes_at
            else _("none"),
        }
    subject = " ".join(fill(subject_t, values).split())
    body = re.sub(r"\n{3,}", "\n\n", fill(body_t, values).replace("\r\n", "\n")).strip()
    queue_email(session, address, "abstracts/notice", lang, subject=subject, body=body)


def _link(endpoint: str, **values) -> str:
    try:
        return url_for(endpoint, _external=True, **values)
    except RuntimeError:  # outside a request (CLI): no link
        return ""


def _submitter_link(abstract: Abstract, lang: str) -> str:
    return _link(
        "abstracts.view", lang_code=lang, slug=abstract.event.slug, abstract_id=abstract.id
    )


def _notify_submitter(session: Session, abstract: Abstract, kind: str, note: str = "") -> None:
    _address, lang = _recipient(abstract.submitter)
    _notify(session, abstract, kind, abstract.submitter, _submitter_link(abstract, lang), note)


# -- submitting ------------------------------------------------------------------------------


def _record(session: Session, actor, abstract: Abstract, action: str, **data) -> None:
    audit.record(session, actor, SUBJECT, abstract.id, action, **data)


def _new_abstract(session: Session, event: Event, user, settings: CallSettings) -> Abstract:
    block = new_block(event, settings)
    if block is not None:
        raise AbstractError(block)
    abstract = Abstract(
        event_id=event.id,
        submitter_id=user.person_id,
        state=AbstractState.draft,
        language=event.series.default_language,
    )
    abstract.event = event
    abstract.submitter = user.person
    session.add(abstract)
    return abstract


def _check_owner(user, abstract: Abstract) -> None:
    if not is_submitter(user, abstract):
        raise NotFound(abstract.id)


def save_draft(
    session: Session, event: Event, user, data: AbstractInput, abstract: Abstract | None = None
) -> Abstract:
    """Create or change a draft (not yet submitted): only a title is required."""
    settings = call_settings(event)
    if abstract is not None:
        _check_owner(user, abstract)
        if abstract.state != AbstractState.draft:
            raise AbstractError(
                _l("This abstract has already been submitted; save your changes with “Submit”.")
            )
        block = edit_block(abstract, settings)
        if block is not None:
            raise AbstractError(block)
    _raise_first(problems(data, settings, submitting=False))
    if abstract is None:
        abstract = _new_abstract(session, event, user, settings)
    _apply(session, abstract, data, user, create=False)
    session.flush()
    _record(session, user, abstract, "draft_saved")
    return abstract


def submit(
    session: Session, event: Event, user, data: AbstractInput, abstract: Abstract | None = None
) -> Abstract:
    """Submit a new, draft or returned abstract, or save changes to a submitted one."""
    settings = call_settings(event)
    if abstract is not None:
        _check_owner(user, abstract)
        block = edit_block(abstract, settings)
        if block is not None:
            raise AbstractError(block)
    _raise_first(problems(data, settings, submitting=True))
    if abstract is None:
        abstract = _new_abstract(session, event, user, settings)
    old = abstract.state
    _apply(session, abstract, data, user, create=True)
    abstract.state = AbstractState.submitted
    if abstract.submitted_at is None:
        abstract.submitted_at = utcnow()
    session.flush()
    action = "submitted" if old == AbstractState.draft else "resubmitted"
    if old == AbstractState.submitted:
        action = "changed"
    _record(session, user, abstract, action, old=old.value, new=abstract.state.value)
    _notify_submitter(session, abstract, "submitted")
    return abstract


def withdraw(session: Session, abstract: Abstract, user) -> None:
    """The submitter withdraws a draft or an abstract that is not decided yet."""
    _check_owner(user, abstract)
    if abstract.state not in EDITABLE_STATES:
        raise AbstractError(
            _l("A decided abstract cannot be withdrawn here; please contact the organisers.")
        )
    old = abstract.state
    abstract.state = AbstractState.withdrawn
    abstract.reopened = False
    _record(session, user, abstract, "withdrawn", old=old.value, new=abstract.state.value)
    if old != AbstractState.draft:
        _notify_submitter(session, abstract, "withdrawn")


def reopen(session: Session, abstract: Abstract, actor) -> None:
    """An organiser lets the submitter change this one abstract after the deadline.

    A withdrawn abstract comes back as submitted, open for changes until the decision.
    """
    if not organisers_see(abstract):
        raise NotFound(abstract.id)
    if abstract.state not in UNDER_REVIEW | {AbstractState.withdrawn}:
        raise AbstractError(_l("A decided abstract cannot be reopened."))
    if abstract.reopened and abstract.state != AbstractState.withdrawn:
        raise AbstractError(_l("This abstract is already open for changes."))
    old = abstract.state
    if old == AbstractState.withdrawn:
        abstract.state = AbstractState.submitted
    abstract.reopened = True
    _record(session, actor, abstract, "reopened", old=old.value, new=abstract.state.value)
    _notify_submitter(session, abstract, "reopened")


# -- reviewing -------------------------------------------------------------------------------


def reviewer_candidates(session: Session, event: Event) -> list[Person]:
    """People with the reviewer role for the event's series (or for every series)."""
    stmt = (
        sa.select(Person)
        .join(User, User.person_id == Person.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(
            UserRole.role == Role.reviewer,
            sa.or_(UserRole.series_id == event.series_id, UserRole.series_id.is_(None)),
            Person.anonymised_at.is_(None),
        )
        .options(joinedload(Person.user))
        .order_by(Person.id)
        .distinct()
    )
    return list(session.scalars(stmt).unique())


def _folded(text: str | None) -> str:
    return speaker_search.compact(text)


def _affiliation_keys(person: Person, current: dict) -> set[str]:
    keys = {_folded(person.affiliation)}
    entry = current.get(person.id)
    if entry is not None:
        keys |= {_folded(entry.organisation.ja), _folded(entry.organisation.en)}
    keys.discard("")
    return keys


def conflict(reviewer: Person, abstract: Abstract, current: dict) -> str | None:
    """Why the person may not review the abstract ("author", "affiliation"), or None."""
    author_ids = {a.person_id for a in abstract.authors if a.person_id}
    if abstract.submitter_id:
        author_ids.add(abstract.submitter_id)
    if reviewer.id in author_ids:
        return "author"
    mine = _affiliation_keys(reviewer, current)
    theirs: set[str] = set()
    for author in abstract.authors:
        theirs.add(_folded(author.affiliation))
        if author.person is not None:
            theirs |= _affiliation_keys(author.person, current)
    theirs.discard("")
    if mine & theirs:
        return "affiliation"
    return None


CONFLICT_MESSAGES = {
    "author": _l("This person is an author of the abstract and cannot review it."),
    "affiliation": _l(
        "This person has the same affiliation as an author and cannot review the abstract."
    ),
}


def _current_affiliations(session: Session, people) -> dict:
    ids = {p.id for p in people if p is not None}
    return speakers.current_affiliations(session, ids) if ids else {}


def _assign(session: Session, abstract: Abstract, reviewer: Person, actor) -> ReviewAssignment:
    assignment = ReviewAssignment(
        abstract_id=abstract.id, reviewer_id=reviewer.id, assigned_by_id=getattr(actor, "id", None)
    )
    assignment.reviewer = reviewer
    abstract.assignments.append(assignment)
    session.flush()
    _record(session, actor, abstract, "reviewer_assigned", reviewer_id=reviewer.id)
    _address, lang = _recipient(reviewer)
    link = _link(
        "abstracts.review", lang_code=lang, slug=abstract.event.slug, assignment_id=assignment.id
    )
    _notify(session, abstract, "reviewer_assigned", reviewer, link)
    return assignment


def assign_reviewer(
    session: Session, abstract: Abstract, reviewer: Person, actor
) -> ReviewAssignment:
    """Assign one reviewer by hand (a reviewer of the series; never an author or colleague)."""
    if abstract.state not in UNDER_REVIEW:
        raise AbstractError(_l("Only submitted abstracts can be given reviewers."))
    candidates = {p.id for p in reviewer_candidates(session, abstract.event)}
    if reviewer.id not in candidates:
        raise AbstractError(_l("This person is not a reviewer of this series."), field="reviewer")
    if any(a.reviewer_id == reviewer.id for a in abstract.assignments):
        raise AbstractError(_l("This reviewer is already assigned."), field="reviewer")
    people = [reviewer, *(a.person for a in abstract.authors)]
    reason = conflict(reviewer, abstract, _current_affiliations(session, people))
    if reason is not None:
        raise AbstractError(CONFLICT_MESSAGES[reason], field="reviewer")
    return _assign(session, abstract, reviewer, actor)


def unassign(session: Session, assignment: ReviewAssignment, actor) -> None:
    """Take a reviewer off an abstract (their review, if any, goes with the assignment)."""
    abstract = assignment.abstract
    if abstract.state.is_decided:
        raise AbstractError(_l("Reviewers cannot be changed after the decision."))
    had_review = assignment.review is not None
    reviewer_id = assignment.reviewer_id
    abstract.assignments.remove(assignment)
    session.flush()
    _record(
        session, actor, abstract, "reviewer_unassigned", reviewer_id=reviewer_id,
        review_removed=had_review,
    )  # fmt: skip


@dataclass
class AutoAssignResult:
    assigned: int = 0
    short: list[int] = field(default_factory=list)  # abstracts still below the target


def auto_assign(
    session: Session, event: Event, actor, per_abstract: int | None = None
) -> AutoAssignResult:
    """Fill every submitted abstract up to ``per_abstract`` reviewers, least-loaded first.

    Never an author, never someone with an author's affiliation; the load counts every
    assignment in the event; ties go to the lower id, so the result is repeatable.
    """
    settings = call_settings(event)
    target = per_abstract or settings.reviewers_per_abstract
    reviewers = reviewer_candidates(session, event)
    abstracts = list(
        session.scalars(
            sa.select(Abstract)
            .where(Abstract.event_id == event.id, Abstract.state.in_(UNDER_REVIEW))
            .options(
                selectinload(Abstract.authors).joinedload(AbstractAuthor.person),
                selectinload(Abstract.assignments),
            )
            .order_by(Abstract.id)
        ).unique()
    )
    load = dict.fromkeys((p.id for p in reviewers), 0)
    for row in session.execute(
        sa.select(ReviewAssignment.reviewer_id, sa.func.count())
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(Abstract.event_id == event.id)
        .group_by(ReviewAssignment.reviewer_id)
    ):
        if row[0] in load:
            load[row[0]] = row[1]
    people = list(reviewers)
    for abstract in abstracts:
        people.extend(a.person for a in abstract.authors)
    current = _current_affiliations(session, people)
    result = AutoAssignResult()
    for abstract in abstracts:
        taken = {a.reviewer_id for a in abstract.assignments}
        need = target - len(abstract.assignments)
        if need <= 0:
            continue
        eligible = [
            p for p in reviewers if p.id not in taken and conflict(p, abstract, current) is None
        ]
        eligible.sort(key=lambda p: (load[p.id], p.id))
        for reviewer in eligible[:need]:
            _assign(session, abstract, reviewer, actor)
            load[reviewer.id] += 1
            result.assigned += 1
        if len(eligible) < need:
            result.short.append(abstract.id)
    audit.record(
        session, actor, "event", event.id, "abstracts.auto_assign",
        assigned=result.assigned, short=result.short, per_abstract=target,
    )  # fmt: skip
    return result


def save_review(
    session: Session, assignment: ReviewAssignment, user, scores: dict, comment: str
) -> Review:
    """The reviewer's scores (one per criterion, 1 to the scale's top) and comment."""
    abstract = assignment.abstract
    if assignment.reviewer_id is None or assignment.reviewer_id != user.person_id:
        raise NotFound(assignment.id)
    if abstract.state not in UNDER_REVIEW:
        raise AbstractError(_l("A decision has been made; the review can no longer be changed."))
    settings = call_settings(abstract.event)
    clean: dict[str, int] = {}
    for criterion in settings.criteria:
        value = scores.get(criterion.key)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not 1 <= number <= settings.scale_max:
            raise AbstractError(
                _l("Please give a score from 1 to %(max)d.", max=settings.scale_max),
                field=f"score_{criterion.key}",
            )
        clean[criterion.key] = number
    review = assignment.review
    created = review is None
    if review is None:
        review = Review(scores={}, comment="")
        assignment.review = review
    review.scores = clean
    review.overall = round(sum(clean.values()) / len(clean), 4)
    review.comment = (comment or "").strip()
    session.flush()
    _record(
        session, user, abstract, "review_saved" if created else "review_changed",
        assignment_id=assignment.id,
    )  # fmt: skip
    return review


# -- deciding --------------------------------------------------------------------------------


def _next_position(session: Session, event: Event) -> int:
    return (
        session.scalar(sa.select(sa.func.max(Talk.position)).where(Talk.event_id == event.id)) or 0
    ) + 1


def _ensure_talk(session: Session, abstract: Abstract, actor) -> Talk:
    """The abstract's talk in the event's programme, created after the existing talks."""
    talk = abstract.talk
    if talk is None:
        talk = Talk(
            event_id=abstract.event_id,
            title=abstract.title,
            abstract=abstract.body,
            language=abstract.language,
            position=_next_position(session, abstract.event),
        )
        session.add(talk)
        session.flush()
        abstract.talk = talk
        audit.record(session, actor, "talk", talk.id, "created", abstract_id=abstract.id)
    else:
        talk.title = abstract.title
        talk.abstract = abstract.body
        talk.language = abstract.language
    presenting = abstract.presenting_author
    if presenting is not None and presenting.person_id:
        person_id = speakers.resolve(session, presenting.person_id) or presenting.person_id
        speakers.attach_speaker(session, talk, session.get(Person, person_id), actor)
    return talk


def _remove_talk(session: Session, abstract: Abstract, actor) -> None:
    talk = abstract.talk
    if talk is None:
        return
    abstract.talk = None
    session.delete(talk)
    session.flush()
    audit.record(session, actor, "talk", talk.id, "removed", abstract_id=abstract.id)


def _decide(session: Session, abstract: Abstract, actor, new: AbstractState, note: str) -> None:
    if abstract.state not in DECISION_FROM[new]:
        raise AbstractError(
            _l(
                "An abstract cannot move from “%(old)s” to “%(new)s”.",
                old=STATE_LABELS[abstract.state],
                new=STATE_LABELS[new],
            )
        )
    old = abstract.state
    abstract.state = new
    abstract.decision_note = (note or "").strip()
    abstract.decided_at = utcnow()
    abstract.reopened = new == AbstractState.revision_requested
    if new.is_accepted:
        _ensure_talk(session, abstract, actor)
    elif old.is_accepted:
        _remove_talk(session, abstract, actor)
    _record(
        session,
        actor,
        abstract,
        new.value,
        old=old.value,
        new=new.value,
        note=abstract.decision_note,
    )
    _notify_submitter(session, abstract, new.value, abstract.decision_note)


def accept_oral(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Accept as an oral presentation: the abstract becomes a talk of the event."""
    _decide(session, abstract, actor, AbstractState.accepted_oral, note)


def accept_poster(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Accept as a poster presentation: the abstract becomes a talk of the event."""
    _decide(session, abstract, actor, AbstractState.accepted_poster, note)


def reject(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Do not accept (an accepted abstract's talk is removed from the programme)."""
    _decide(session, abstract, actor, AbstractState.rejected, note)


def request_revision(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Ask the submitter to change the abstract; they may edit it again, even after the deadline."""
    _decide(session, abstract, actor, AbstractState.revision_requested, note)


DECISIONS = {
    "accept_oral": accept_oral,
    "accept_poster": accept_poster,
    "reject": reject,
    "request_revision": request_revision,
}


# -- reading ---------------------------------------------------------------------------------


def get_abstract(session: Session, event: Event, abstract_id: int) -> Abstract | None:
    return session.scalars(
        sa.select(Abstract)
        .where(Abstract.id == abstract_id, Abstract.event_id == event.id)
        .options(
            selectinload(Abstract.authors).joinedload(AbstractAuthor.person),
            selectinload(Abstract.assignments).joinedload(ReviewAssignment.review),
            selectinload(Abstract.assignments).joinedload(ReviewAssignment.reviewer),
            joinedload(Abstract.submitter),
        )
    ).first()


def get_assignment(session: Session, event: Event, assignment_id: int) -> ReviewAssignment | None:
    return session.scalars(
        sa.select(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(ReviewAssignment.id == assignment_id, Abstract.event_id == event.id)
        .options(
            joinedload(ReviewAssignment.review),
            joinedload(ReviewAssignment.abstract)
            .selectinload(Abstract.authors)
            .joinedload(AbstractAuthor.person),
        )
    ).first()


def my_abstracts(event: Event, user) -> sa.Select:
    return (
        sa.select(Abstract)
        .where(Abstract.event_id == event.id, Abstract.submitter_id == user.person_id)
        .order_by(Abstract.created_at.desc(), Abstract.id.desc())
    )


def assigned_to(event: Event, user) -> sa.Select:
    """The reviewer's assignments in the event that they may still see."""
    return (
        sa.select(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(
            Abstract.event_id == event.id,
            ReviewAssignment.reviewer_id == user.person_id,
            Abstract.state.in_(REVIEWER_VISIBLE),
        )
        .options(joinedload(ReviewAssignment.abstract), joinedload(ReviewAssignment.review))
        .order_by(Abstract.id)
    )


def reviewer_may_see(assignment: ReviewAssignment, user) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and assignment.reviewer_id is not None
        and assignment.reviewer_id == user.person_id
        and assignment.abstract.state in REVIEWER_VISIBLE
        and is_reviewer(user, assignment.abstract.event)
    )


def has_accepted(session: Session, event: Event) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(Abstract.event_id == event.id, Abstract.state.in_(ACCEPTED))
            )
        )
    )


def has_assignments(session: Session, event: Event, user) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists()
                .where(ReviewAssignment.abstract_id == Abstract.id)
                .where(
                    Abstract.event_id == event.id,
                    ReviewAssignment.reviewer_id == user.person_id,
                    Abstract.state.in_(REVIEWER_VISIBLE),
                )
            )
        )
    )


@dataclass
class Progress:
    counts: dict = field(default_factory=dict)  # AbstractState -> int (drafts left out)
    total: int = 0
    assignments: int = 0
    reviews: int = 0
    without_reviewers: int = 0


def progress(session: Session, event: Event) -> Progress:
    result = Progress()
    for state, number in session.execute(
        sa.select(Abstract.state, sa.func.count())
        .where(Abstract.event_id == event.id, ORGANISERS_SEE)
        .group_by(Abstract.state)
    ):
        result.counts[AbstractState(state)] = number
    result.total = sum(result.counts.values())
    row = session.execute(
        sa.select(sa.func.count(ReviewAssignment.id), sa.func.count(Review.id))
        .select_from(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(Abstract.event_id == event.id, Abstract.state != AbstractState.withdrawn)
    ).one()
    result.assignments, result.reviews = row[0], row[1]
    result.without_reviewers = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Abstract)
            .where(
                Abstract.event_id == event.id,
                Abstract.state.in_(UNDER_REVIEW),
                ~sa.exists().where(ReviewAssignment.abstract_id == Abstract.id),
            )
        )
        or 0
    )
    return result


@dataclass
class ScoreSummary:
    assigned: int = 0
    count: int = 0
    mean: float | None = None
    stdev: float | None = None
    low: float | None = None
    high: float | None = None
    by_criterion: dict = field(default_factory=dict)  # key -> mean

    @property
    def spread(self) -> float | None:
        return None if self.low is None else self.high - self.low


def _stats_subquery():
    return (
        sa.select(
            ReviewAssignment.abstract_id.label("abstract_id"),
            sa.func.count(ReviewAssignment.id).label("assigned"),
            sa.func.count(Review.id).label("reviews"),
            sa.func.avg(Review.overall).label("mean"),
            (sa.func.max(Review.overall) - sa.func.min(Review.overall)).label("spread"),
        )
        .select_from(ReviewAssignment)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .group_by(ReviewAssignment.abstract_id)
        .subquery()
    )


SORTS = ("id", "state", "mean", "spread", "count")


def organiser_list(event: Event, state: str | None = None, sort: str = "id") -> sa.Select:
    """Every abstract of the event ever submitted, sortable by its scores."""
    stats = _stats_subquery()
    stmt = (
        sa.select(Abstract)
        .outerjoin(stats, stats.c.abstract_id == Abstract.id)
        .where(Abstract.event_id == event.id, ORGANISERS_SEE)
        .options(
            selectinload(Abstract.authors),
            joinedload(Abstract.submitter),
        )
    )
    if state in AbstractState.__members__:
        stmt = stmt.where(Abstract.state == AbstractState(state))
    order = {
        "id": [Abstract.id],
        "state": [Abstract.state, Abstract.id],
        "mean": [stats.c.mean.desc().nulls_last(), Abstract.id],
        "spread": [stats.c.spread.desc().nulls_last(), Abstract.id],
        "count": [sa.func.coalesce(stats.c.reviews, 0).desc(), Abstract.id],
    }.get(sort, [Abstract.id])
    return stmt.order_by(*order)


def score_summaries(session: Session, abstracts: list[Abstract]) -> dict[int, ScoreSummary]:
    """Scores side by side for these abstracts, in one query."""
    ids = [a.id for a in abstracts]
    summaries = {i: ScoreSummary() for i in ids}
    if not ids:
        return summaries
    rows = session.execute(
        sa.select(ReviewAssignment.abstract_id, Review.overall, Review.scores)
        .select_from(ReviewAssignment)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.abstract_id.in_(ids))
    )
    collected: dict[int, list] = {i: [] for i in ids}
    for abstract_id, overall, scores in rows:
        summaries[abstract_id].assigned += 1
        if overall is not None:
            collected[abstract_id].append((overall, scores or {}))
    for abstract_id, reviews in collected.items():
        summary = summaries[abstract_id]
        summarise(summary, reviews)
    return summaries


def summarise(summary: ScoreSummary, reviews: list[tuple[float, dict]]) -> ScoreSummary:
    overall = [r[0] for r in reviews]
    summary.count = len(overall)
    if overall:
        summary.mean = round(statistics.fmean(overall), 2)
        summary.stdev = round(statistics.pstdev(overall), 2)
        summary.low, summary.high = min(overall), max(overall)
        keys: dict[str, list[int]] = {}
        for _overall, scores in reviews:
            for key, value in scores.items():
                keys.setdefault(key, []).append(value)
        summary.by_criterion = {k: round(statistics.fmean(v), 2) for k, v in keys.items()}
    return summary


def summary_of(abstract: Abstract) -> ScoreSummary:
    """Scores of one abstract whose assignments and reviews are loaded."""
    summary = ScoreSummary(assigned=len(abstract.assignments))
    reviews = [(a.review.overall, a.review.scores or {}) for a in abstract.assignments if a.review]
    return summarise(summary, reviews)


def history(session: Session, abstract: Abstract) -> list:
    return audit.history(session, SUBJECT, abstract.id)


HISTORY_LABELS = {
    "draft_saved": _l("Draft saved"),
    "submitted": _l("Submitted"),
    "resubmitted": _l("Submitted again"),
    "changed": _l("Changed after submission"),
    "withdrawn": _l("Withdrawn"),
    "reopened": _l("Reopened for changes"),
    "reviewer_assigned": _l("Reviewer assigned"),
    "reviewer_unassigned": _l("Reviewer taken off"),
    "review_saved": _l("Review saved"),
    "review_changed": _l("Review changed"),
    "accepted_oral": _l("Accepted (oral presentation)"),
    "accepted_poster": _l("Accepted (poster presentation)"),
    "rejected": _l("Not accepted"),
    "revision_requested": _l("Revision requested"),
}

SUBMITTER_ACTIONS = {
    "draft_saved", "submitted", "resubmitted", "changed", "withdrawn", "reopened",
    "accepted_oral", "accepted_poster", "rejected", "revision_requested",
}  # fmt: skip


def submitter_history(session: Session, abstract: Abstract) -> list:
    """What the submitter may see of the history: no reviewers, no reviews."""
    return [e for e in history(session, abstract) if e.action in SUBMITTER_ACTIONS]


def book_abstracts(session: Session, event: Event, by: str = "topic") -> list[tuple[str, list]]:
    """Accepted abstracts grouped by topic (the settings' order) or by session (oral, poster).

    Returns [(group label, [abstracts])]; within a group, by the talk's programme position.
    """
    settings = call_settings(event)
    abstracts = list(
        session.scalars(
            sa.select(Abstract)
            .where(Abstract.event_id == event.id, Abstract.state.in_(ACCEPTED))
            .options(selectinload(Abstract.authors), joinedload(Abstract.talk))
            .order_by(Abstract.id)
        ).unique()
    )

    def position(abstract: Abstract):
        return (abstract.talk.position if abstract.talk else 0, abstract.id)

    groups: list[tuple[str, list]] = []
    if by == "session":
        for state, label in (
            (AbstractState.accepted_oral, _("Oral presentations")),
            (AbstractState.accepted_poster, _("Poster presentations")),
        ):
            items = sorted((a for a in abstracts if a.state == state), key=position)
            if items:
                groups.append((label, items))
        return groups
    order = {t.key: i for i, t in enumerate(settings.topics)}
    keys = sorted({a.topic for a in abstracts}, key=lambda k: (k not in order, order.get(k, 0), k))
    for key in keys:
        items = sorted(
            (a for a in abstracts if a.topic == key),
            key=lambda a: (a.state != AbstractState.accepted_oral, *position(a)),
        )
        groups.append((settings.topic_label(key) if key else _("Other"), items))
    return groups


def author_affiliations(
    abstract: Abstract,
) -> tuple[list[tuple[AbstractAuthor, list[int]]], list[str]]:
    """Authors with the numbers of their affiliations, and the numbered affiliations."""
    numbered: list[str] = []
    result = []
    for author in abstract.authors:
        marks = []
        if author.affiliation:
            if author.affiliation not in numbered:
                numbered.append(author.affiliation)
            marks.append(numbered.index(author.affiliation) + 1)
        result.append((author, marks))
    return result, numbered


# -- CSV -------------------------------------------------------------------------------------


def export_csv(session: Session, event: Event) -> str:
    """Every abstract but drafts, with scores and decisions (UTF-8 with BOM for Excel)."""
    settings = call_settings(event)
    abstracts = list(session.scalars(organiser_list(event)).unique())
    summaries = score_summaries(session, abstracts)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    header = [
        "id", "state", "title_ja", "title_en", "topic", "requested_type", "language",
        "presenting_author", "authors", "affiliations", "submitted_at", "decided_at",
        "reviewers", "reviews", "mean", "stdev", "min", "max",
    ]  # fmt: skip
    header += [f"mean_{c.key}" for c in settings.criteria]
    writer.writerow(header)
    for abstract in abstracts:
        s = summaries[abstract.id]
        presenting = abstract.presenting_author
        affiliations = []
        for author in abstract.authors:
            if author.affiliation and author.affiliation not in affiliations:
                affiliations.append(author.affiliation)
        row = [
            abstract.id,
            abstract.state.value,
            abstract.title.ja,
            abstract.title.en,
            settings.topic_label(abstract.topic, "en") if abstract.topic else "",
            abstract.presentation_type,
            abstract.language,
            presenting.name if presenting else "",
            "; ".join(a.name for a in abstract.authors),
            "; ".join(affiliations),
            _csv_time(abstract.submitted_at, event),
            _csv_time(abstract.decided_at, event),
            s.assigned,
            s.count,
            _num(s.mean),
            _num(s.stdev),
            _num(s.low),
            _num(s.high),
        ]
        row += [_num(s.by_criterion.get(c.key)) for c in settings.criteria]
        writer.writerow([_safe_cell(v) for v in row])
    return out.getvalue()


def _num(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _csv_time(value: datetime | None, event: Event) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(event.timezone)).strftime("%Y-%m-%d %H:%M")


_safe_cell = safe_cell


# -- personal data ---------------------------------------------------------------------------


def personal_data(person: Person) -> dict:
    """What this plugin keeps about the person: their abstracts, authorships and reviews."""
    session = object_session(person)
    if session is None:
        return {}
    submitted = session.scalars(
        sa.select(Abstract).where(Abstract.submitter_id == person.id).order_by(Abstract.id)
    ).all()
    authorships = session.scalars(
        sa.select(AbstractAuthor)
        .where(AbstractAuthor.person_id == person.id)
        .order_by(AbstractAuthor.abstract_id)
    ).all()
    reviews = session.scalars(
        sa.select(ReviewAssignment)
        .where(ReviewAssignment.reviewer_id == person.id)
        .options(joinedload(ReviewAssignment.review))
        .order_by(ReviewAssignment.id)
    ).all()
    return {
        "abstracts": [
            {
                "id": a.id,
                "event_id": a.event_id,
                "title": a.title.as_dict(),
                "body": a.body.as_dict(),
                "state": a.state.value,
                "topic": a.topic,
                "presentation_type": a.presentation_type,
                "pdf_filename": a.pdf_filename,
                "submitted_at": a.submitted_at.isoformat() if a.submitted_at else None,
            }
            for a in submitted
        ],
        "authorships": [
            {
                "abstract_id": a.abstract_id,
                "position": a.position,
                "name": a.name,
                "affiliation": a.affiliation,
                "email": a.email,
                "presenting": a.presenting,
            }
            for a in authorships
        ],
        "reviews": [
            {
                "abstract_id": r.abstract_id,
                "assigned_at": r.assigned_at.isoformat(),
                "scores": r.review.scores if r.review else None,
                "comment": r.review.comment if r.review else None,
            }
            for r in reviews
        ],
    }


def forget_person(person: Person) -> None:
    """The person deleted their account: drafts go, undecided abstracts are withdrawn, the
    names and emails typed as author are blanked, and reviews stay without the reviewer."""
    session = object_session(person)
    if session is None:
        return
    for abstract in session.scalars(
        sa.select(Abstract).where(Abstract.submitter_id == person.id)
    ).all():
        if not organisers_see(abstract):  # drafts, also withdrawn ones
            files.remove_after_commit(session, abstract.pdf_name)
            session.delete(abstract)
            continue
        if abstract.state in EDITABLE_STATES:
            old = abstract.state
            abstract.state = AbstractState.withdrawn
            audit.record(
                session,
                None,
                SUBJECT,
                abstract.id,
                "withdrawn",
                old=old.value,
                new="withdrawn",
                reason="account deleted",
            )
        if abstract.state == AbstractState.withdrawn and abstract.pdf_name:
            files.remove_after_commit(session, abstract.pdf_name)
            abstract.pdf_name = None
            abstract.pdf_filename = ""
            abstract.pdf_size = None
        abstract.submitter_id = None
    session.execute(
        sa.update(AbstractAuthor)
        .where(AbstractAuthor.person_id == person.id)
        .values(name="", email="", affiliation="")
    )
    session.execute(
        sa.update(ReviewAssignment)
        .where(ReviewAssignment.reviewer_id == person.id)
        .values(reviewer_id=None)
    )
    session.flush()
