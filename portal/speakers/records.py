"""Speaker records: reading, searching and changing one record (one function per change;
none commits).

- ``get_profile(session, person_id)``, ``ensure_profile(session, person)``: the record.
- ``search_speakers(query, ...)``: a select over SpeakerProfile for a search box.
- ``current_affiliations(session, person_ids)``: {person_id: Affiliation} in one query.
- ``attach_speaker(session, talk, person, actor)``: the one way a talk gets its speaker.
- ``talk_self_introduction(talk, profile)``: the talk's own text, else the profile's.

Which person an id or an email means (following merges) is ``portal.speakers.identity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from portal import audit
from portal.accounts.models import NAME_FIELDS, Person
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Event, EventStatus, Talk
from portal.i18n import LANGUAGES, BilingualText, format_person_name
from portal.pagination import Page
from portal.speakers import photos, search
from portal.speakers.models import (
    Affiliation,
    SpeakerInvitation,
    SpeakerProfile,
    current_affiliation,
)
from portal.text import LIKE_ESCAPE, like_pattern

# Fields of the Person row a speaker record edits (email only by organisers).
PERSON_FIELDS = (*NAME_FIELDS, "country")
ORGANISER_PERSON_FIELDS = (*PERSON_FIELDS, "email", "preferred_language")
PROFILE_TEXT_FIELDS = ("title", "position", "biography", "self_introduction")
PHOTO_FIELDS = ("photo_filename", "photo_width", "photo_height", "photo_size", "photo_uploaded_at")


class SpeakerError(UserError):
    """A change that is not allowed; ``message`` is translated for the person."""


class MergeError(SpeakerError):
    pass


def get_profile(session: Session, person_id: int) -> SpeakerProfile | None:
    return session.scalars(
        sa.select(SpeakerProfile)
        .where(SpeakerProfile.person_id == person_id)
        .options(joinedload(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
    ).first()


def ensure_profile(session: Session, person: Person) -> SpeakerProfile:
    """The person's speaker profile, created (empty, not published) if they have none."""
    profile = (
        session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
        if person.id
        else None
    )
    if profile is None:
        profile = SpeakerProfile(person=person, links=[])
        session.add(profile)
        search.apply_keys(profile, person, [])
    return profile


def is_editor(person: Person, user) -> bool:
    """Organisers and the speaker themself (through their account) may change a record."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_organiser or user.person_id == person.id)


def current_affiliations(session: Session, person_ids) -> dict[int, Affiliation]:
    """{person_id: current Affiliation} for many people in one query."""
    ids = set(person_ids)
    if not ids:
        return {}
    rows: dict[int, list[Affiliation]] = {}
    for row in session.scalars(sa.select(Affiliation).where(Affiliation.person_id.in_(ids))):
        rows.setdefault(row.person_id, []).append(row)
    found = {pid: current_affiliation(items) for pid, items in rows.items()}
    return {pid: a for pid, a in found.items() if a is not None}


def affiliation_label(profile: SpeakerProfile, lang: str | None = None) -> str:
    """The current affiliation as one line: organisation and position."""
    current = profile.current_affiliation
    if current is None:
        return profile.person.affiliation or ""
    organisation = current.organisation.get(lang)
    position = current.position.get(lang)
    return f"{organisation} {position}".strip() if position else organisation


def talk_self_introduction(talk: Talk, profile: SpeakerProfile | None) -> BilingualText:
    """The talk's own self-introduction, else the speaker's general one."""
    if talk.self_introduction:
        return talk.self_introduction
    return profile.self_introduction if profile is not None else BilingualText()


def _search_conditions(query: str | None, organiser: bool, public: bool, email_scope=None) -> list:
    """``email_scope``: a condition on ``Person`` whose emails match in part (the people of
    the organiser's series, ``portal.people.visible_to``); everyone else's email matches
    only when the whole address is typed. None: any email matches in part."""
    key = SpeakerProfile.public_search_key if public else SpeakerProfile.search_key
    conditions = [SpeakerProfile.merged_into_id.is_(None), Person.anonymised_at.is_(None)]
    for term in search.query_terms(query):
        condition = key.like(like_pattern(term), escape=LIKE_ESCAPE)
        folded = search.hepburn(term) if term.isascii() and term.isalpha() else ""
        if folded and folded != term:
            # Hepburn variants: "satoh" and "satou" also find sato (さとう).
            condition = sa.or_(condition, key.like(like_pattern(folded), escape=LIKE_ESCAPE))
        if organiser and "@" in term:
            partial = SpeakerProfile.email_key.like(like_pattern(term), escape=LIKE_ESCAPE)
            if email_scope is not None:
                partial = sa.or_(sa.and_(email_scope, partial), SpeakerProfile.email_key == term)
            condition = sa.or_(condition, partial)
        conditions.append(condition)
    return conditions


def _sort(lang: str):
    """By name. ``merged_into_id`` leads though every listed record has none: PostgreSQL
    reads the order of the directory indexes (merged_into_id, sort key, person) only when the
    ORDER BY names their first column (``IS NULL`` is not an equality to its planner), and
    then walks the index to the page instead of sorting every speaker."""
    sort = SpeakerProfile.sort_kana if lang == "ja" else SpeakerProfile.sort_roman
    return (SpeakerProfile.merged_into_id, sort, SpeakerProfile.person_id)


def search_speakers(
    query: str | None, lang: str = "ja", organiser: bool = False, public: bool = True
) -> sa.Select:
    """Speakers matching every word of ``query`` in any script, ordered by name.

    The public directory matches affiliations only of speakers who consented to publish;
    ``organiser=True`` also matches email addresses. For a paginated list use
    ``speakers_page``, which reads only narrow columns until it knows which rows to show.
    """
    return (
        sa.select(SpeakerProfile)
        .join(SpeakerProfile.person)
        .where(*_search_conditions(query, organiser, public))
        .options(contains_eager(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
        .order_by(*_sort(lang))
    )


def speakers_page(
    session: Session,
    query: str | None,
    lang: str,
    page: int,
    per_page: int = 20,
    organiser: bool = False,
    public: bool = True,
    email_scope=None,
) -> Page:
    """One page of ``search_speakers`` in three queries, whatever the number of speakers: the
    page's ids on narrow columns, one more than shown to know whether a next page exists (no
    count of every match: ``Page.total`` is None until the last page), then the rows."""
    narrow = (
        sa.select(SpeakerProfile.id)
        .join(Person, Person.id == SpeakerProfile.person_id)
        .where(*_search_conditions(query, organiser, public, email_scope))
    )
    ids = list(
        session.scalars(
            narrow.order_by(*_sort(lang)).limit(per_page + 1).offset((page - 1) * per_page)
        )
    )
    more = len(ids) > per_page
    ids = ids[:per_page]
    # Known exactly on the last page (not on one past the end, which shows nothing).
    total = None if more or (page > 1 and not ids) else (page - 1) * per_page + len(ids)
    rows = (
        {
            p.id: p
            for p in session.scalars(
                sa.select(SpeakerProfile)
                .where(SpeakerProfile.id.in_(ids))
                .options(
                    joinedload(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations)
                )
            ).unique()
        }
        if ids
        else {}
    )
    return Page(
        items=[rows[i] for i in ids if i in rows],
        page=page,
        per_page=per_page,
        total=total,
        more=more,
    )


@dataclass
class TalkEntry:
    talk: Talk
    links: list = field(default_factory=list)


def talk_with_event(session: Session, talk_id: int) -> Talk | None:
    """The talk with its event (and so the series, for the access check)."""
    return session.scalars(
        sa.select(Talk).where(Talk.id == talk_id).options(joinedload(Talk.event))
    ).first()


def speaker_talks(session: Session, person_id: int, user=None) -> list[Talk]:
    """Every talk of the speaker in either series that the viewer may see, newest first."""
    from portal.events.services import can_view

    talks = session.scalars(
        sa.select(Talk)
        .join(Talk.event)
        .where(Talk.speaker_id == person_id)
        .options(contains_eager(Talk.event))
        .order_by(
            Event.starts_at.desc(), Talk.starts_at.desc().nulls_last(), Talk.position, Talk.id
        )
    ).unique()
    return [t for t in talks if can_view(t.event, user)]


def talk_entries(session: Session, person_id: int, user=None) -> list[TalkEntry]:
    """The speaker's talks with the links plugins offer for each (slides, recordings…)."""
    from portal import plugins

    talks = speaker_talks(session, person_id, user)
    plugins.preload({t.event for t in talks})
    return [
        TalkEntry(
            talk=t,
            links=plugins.collect(plugins.event_hooks(t.event).talk_links(talk=t, user=user)),
        )
        for t in talks
    ]


def upcoming_talks(session: Session, person_id: int) -> list[Talk]:
    """The speaker's talks at events that have not ended and are not cancelled."""
    return list(
        session.scalars(
            sa.select(Talk)
            .join(Talk.event)
            .where(
                Talk.speaker_id == person_id,
                Event.ends_at >= utcnow(),
                Event.status != EventStatus.cancelled,
            )
            .options(contains_eager(Talk.event))
            .order_by(Event.starts_at, Talk.position, Talk.id)
        ).unique()
    )


def has_speaker_data(session: Session, person: Person) -> bool:
    """Whether a person already is a speaker: talks, affiliations or a filled-in profile."""
    if session.scalar(sa.select(sa.exists().where(Talk.speaker_id == person.id))):
        return True
    if session.scalar(sa.select(sa.exists().where(Affiliation.person_id == person.id))):
        return True
    profile = session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    if profile is None:
        return False
    return bool(
        any(getattr(profile, f) for f in PROFILE_TEXT_FIELDS)
        or profile.links
        or profile.photo_filename
    )


# -- changing a record ------------------------------------------------------------------------


def _clean_links(links) -> list[dict]:
    clean = []
    for link in links or []:
        url = (link.get("url") or "").strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SpeakerError(_l("Links must be web addresses starting with https:// or http://."))
        clean.append({"label": (link.get("label") or "").strip()[:100], "url": url[:500]})
    return clean[:20]


def _apply(profile: SpeakerProfile, person: Person, values: dict, person_fields) -> list[str]:
    """Set the given values; returns the names of what changed."""
    changed = []
    for name in person_fields:
        if name not in values:
            continue
        value = values[name]
        if name == "email":
            value = (value or "").strip() or None
        elif name == "country":
            value = (value or "").strip().upper()
        elif name == "preferred_language":
            value = value if value in LANGUAGES else person.preferred_language
        else:
            value = (value or "").strip()
        if getattr(person, name) != value:
            setattr(person, name, value)
            changed.append(name)
    for name in PROFILE_TEXT_FIELDS:
        if name in values:
            value = BilingualText.of(values[name])
            value = BilingualText(ja=value.ja.strip(), en=value.en.strip())
            if getattr(profile, name) != value:
                setattr(profile, name, value)
                changed.append(name)
    if "links" in values:
        links = _clean_links(values["links"])
        if (profile.links or []) != links:
            profile.links = links
            changed.append("links")
    if "publish_consent" in values:
        consent = bool(values["publish_consent"])
        if profile.publish_consent != consent:
            profile.publish_consent = consent
            profile.consent_changed_at = utcnow()
            changed.append("publish_consent")
    return changed


def _set_photo(session: Session, profile: SpeakerProfile, data: bytes) -> None:
    photo = photos.process(data)  # PhotoError before anything changes
    old = profile.photo_filename
    name = photos.store(session, photo)
    profile.photo_filename = name
    profile.photo_width = photo.width
    profile.photo_height = photo.height
    profile.photo_size = len(photo.data)
    profile.photo_uploaded_at = utcnow()
    photos_after_commit(session, remove=old)


def photos_after_commit(session: Session, remove: str | None = None):
    """Remove a replaced photo once the change is committed (``portal/storage.py``; a new
    photo is removed again if the change is rolled back)."""
    photos.remove_after_commit(session, remove)


def _refresh_keys(session: Session, profile: SpeakerProfile) -> None:
    session.flush()
    search.refresh(session, [profile.person_id])


def create_speaker(
    session: Session, values: dict, actor, photo: bytes | None = None
) -> SpeakerProfile:
    """A new speaker record (a Person without an account, and their profile)."""
    if photo is not None:
        photos.process(photo)  # check before creating anything
    person = Person(preferred_language="ja")
    profile = SpeakerProfile(person=person, links=[])
    _apply(profile, person, values, ORGANISER_PERSON_FIELDS)
    if not (search.native_name(person) or person.romanized_name):
        raise SpeakerError(_l("Please enter the name in Japanese script or in Latin letters."))
    session.add_all([person, profile])
    session.flush()
    if photo is not None:
        _set_photo(session, profile, photo)
    _refresh_keys(session, profile)
    audit.record(session, actor, "speaker", person.id, "created", name=format_person_name(person))
    return profile


def update_speaker(
    session: Session,
    person: Person,
    values: dict,
    actor,
    photo: bytes | None = None,
    talk_introductions: dict | None = None,
    invitation: SpeakerInvitation | None = None,
) -> SpeakerProfile:
    """Change a speaker record: by an organiser (every field), or by the speaker themself
    (through their account or an invitation: no email, no language).

    ``talk_introductions`` is {talk_id: BilingualText} for the speaker's own talks.
    """
    organiser = getattr(actor, "is_authenticated", False) and actor.is_organiser
    if invitation is None and not is_editor(person, actor):
        raise SpeakerError(_l("You may not change this speaker record."))
    if invitation is not None and invitation.person_id != person.id:
        raise SpeakerError(_l("You may not change this speaker record."))
    profile = ensure_profile(session, person)
    if profile.is_merged:
        raise SpeakerError(_l("This record has been merged into another one."))
    if photo is not None:
        photos.process(photo)  # a bad photo changes nothing
    person_fields = ORGANISER_PERSON_FIELDS if organiser and invitation is None else PERSON_FIELDS
    changed = _apply(profile, person, values, person_fields)
    if not (search.native_name(person) or person.romanized_name):
        raise SpeakerError(_l("Please enter the name in Japanese script or in Latin letters."))
    if photo is not None:
        _set_photo(session, profile, photo)
        changed.append("photo")
    for talk_id, text in (talk_introductions or {}).items():
        talk = session.get(Talk, talk_id)
        if talk is None or talk.speaker_id != person.id:
            raise SpeakerError(_l("You may not change this talk."))
        text = BilingualText.of(text)
        text = BilingualText(ja=text.ja.strip(), en=text.en.strip())
        if talk.self_introduction != text:
            talk.self_introduction = text
            changed.append(f"talk:{talk.id}")
    if invitation is not None:
        invitation.used_at = utcnow()
    _refresh_keys(session, profile)
    if changed:
        audit.record(
            session,
            actor if getattr(actor, "is_authenticated", False) else None,
            "speaker",
            person.id,
            "updated",
            fields=changed,
            via="invitation" if invitation is not None else ("organiser" if organiser else "self"),
            invitation_id=invitation.id if invitation is not None else None,
        )
    return profile


def remove_photo(session: Session, person: Person, actor) -> None:
    profile = ensure_profile(session, person)
    if not profile.photo_filename:
        return
    photos_after_commit(session, remove=profile.photo_filename)
    for name in PHOTO_FIELDS:
        setattr(profile, name, None)
    audit.record(session, actor, "speaker", person.id, "photo_removed")


def add_affiliation(
    session: Session,
    person: Person,
    organisation: BilingualText,
    position: BilingualText,
    started_on: date | None,
    ended_on: date | None,
    actor,
) -> Affiliation:
    """Add an entry to the speaker's affiliation history."""
    organisation = BilingualText.of(organisation)
    if not organisation:
        raise SpeakerError(_l("Please enter the organisation."))
    if started_on and ended_on and ended_on < started_on:
        raise SpeakerError(_l("The end date must not be before the start date."))
    profile = ensure_profile(session, person)
    row = Affiliation(
        person_id=person.id,
        organisation=BilingualText(ja=organisation.ja.strip(), en=organisation.en.strip()),
        position=BilingualText.of(position),
        started_on=started_on,
        ended_on=ended_on,
    )
    session.add(row)
    session.flush()
    current = current_affiliation(
        session.scalars(sa.select(Affiliation).where(Affiliation.person_id == person.id))
    )
    if current is not None:
        # Person.affiliation is the one-line affiliation other pages show.
        person.affiliation = current.organisation.get(person.preferred_language)[:200]
    _refresh_keys(session, profile)
    audit.record(
        session,
        actor if getattr(actor, "is_authenticated", False) else None,
        "speaker",
        person.id,
        "affiliation_added",
        affiliation_id=row.id,
        organisation=row.organisation.as_dict(),
    )
    return row


def attach_speaker(session: Session, talk: Talk, person: Person, actor) -> None:
    """Give a talk its speaker (the one way a talk's speaker changes)."""
    profile = ensure_profile(session, person)
    if profile.is_merged:
        raise SpeakerError(_l("This record has been merged into another one."))
    old = talk.speaker_id
    if old == person.id:
        return
    talk.speaker_id = person.id
    session.flush()
    audit.record(session, actor, "talk", talk.id, "speaker", old=old, new=person.id)


def create_speaker_for_talk(session: Session, talk: Talk, values: dict, actor) -> SpeakerProfile:
    """Create a new speaker record and make it the talk's speaker."""
    profile = create_speaker(session, values, actor)
    attach_speaker(session, talk, profile.person, actor)
    return profile


def set_talk_self_introduction(session: Session, talk: Talk, text: BilingualText, actor) -> None:
    """The speaker's self-introduction for this talk only (organisers)."""
    text = BilingualText.of(text)
    text = BilingualText(ja=text.ja.strip(), en=text.en.strip())
    if talk.self_introduction == text:
        return
    talk.self_introduction = text
    audit.record(session, actor, "talk", talk.id, "self_introduction", fields=["ja", "en"])


def likely_duplicates_of(
    session: Session, values: dict, exclude: int | None = None
) -> list[SpeakerProfile]:
    """Existing records that look like the person described by ``values`` (before creating, or
    ``exclude``: the record being edited): same email, or the same name in one script or
    across scripts (``search.reading_key``)."""
    person = Person(**{k: values.get(k) or "" for k in PERSON_FIELDS})
    person.email = (values.get("email") or "").strip() or None
    conditions = []
    if search.native_name(person):
        conditions.append(SpeakerProfile.name_key == search.native_name(person))
    if search.kana_name(person):
        conditions.append(SpeakerProfile.kana_key == search.kana_name(person))
    if search.roman_key(person.romanized_name):
        conditions.append(SpeakerProfile.roman_key == search.roman_key(person.romanized_name))
    if person.email:
        conditions.append(SpeakerProfile.email_key == person.email.lower())
    if search.reading_key(person):
        candidates = search.reading_candidates(search.reading_key(person))
        conditions.append(SpeakerProfile.reading_key.in_(sorted(candidates)))
    if not conditions:
        return []
    return list(
        session.scalars(
            sa.select(SpeakerProfile)
            .where(
                SpeakerProfile.merged_into_id.is_(None),
                SpeakerProfile.person_id != (exclude or 0),
                sa.or_(*conditions),
            )
            .options(joinedload(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
            .order_by(SpeakerProfile.person_id)
            .limit(20)
        ).unique()
    )


def likely_duplicates_of_record(session: Session, person: Person) -> list[SpeakerProfile]:
    """The other live records that look like this one (shown on its edit page)."""
    values = {name: getattr(person, name) for name in ORGANISER_PERSON_FIELDS}
    found = likely_duplicates_of(session, values, exclude=person.id)
    return [p for p in found if p.person.anonymised_at is None]


# -- maintenance ------------------------------------------------------------------------------


def reindex(session: Session) -> int:
    """Give every person with a talk a profile and recompute every key; returns how many."""
    ids = set(session.scalars(sa.select(Talk.speaker_id).where(Talk.speaker_id.is_not(None))))
    ids |= set(session.scalars(sa.select(SpeakerProfile.person_id)))
    search.refresh(session, ids, create_for=ids)
    session.flush()
    return len(ids)
