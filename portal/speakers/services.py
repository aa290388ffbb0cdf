"""Speaker records: queries and the state changes (one function each; none commits).

For the areas that come later (abstracts, archive, programme):

- ``get_profile(session, person_id)``, ``ensure_profile(session, person)``: the record.
- ``resolve(session, person_id)``: follows merges to the surviving record.
- ``search_speakers(query, ...)``: a select over SpeakerProfile for a search box.
- ``current_affiliations(session, person_ids)``: {person_id: Affiliation} in one query.
- ``attach_speaker(session, talk, person, actor)``: the one way a talk gets its speaker.
- ``talk_self_introduction(talk, profile)``: the talk's own text, else the profile's.
- ``merge_speakers(session, survivor, merged, actor)``: moves every row that refers to the
  merged person (any table with a foreign key to people.id) to the survivor.
- ``speaker_personal_data(session, person)`` and ``forget_speaker(session, person)``: for the
  accounts area's data download and account deletion.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from portal import audit
from portal.accounts.models import Person, User
from portal.csvexport import safe_cell
from portal.db import utcnow
from portal.events.models import Event, EventStatus, Talk
from portal.i18n import LANGUAGES, BilingualText, format_person_name
from portal.mail.services import queue_email
from portal.pagination import Page
from portal.speakers import photos, search
from portal.speakers.models import (
    Affiliation,
    SpeakerInvitation,
    SpeakerMerge,
    SpeakerProfile,
    current_affiliation,
)

# Fields of the Person row a speaker record edits (email only by organisers).
PERSON_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "romanized_name",
    "country",
)
ORGANISER_PERSON_FIELDS = (*PERSON_FIELDS, "email", "preferred_language")
PROFILE_TEXT_FIELDS = ("title", "position", "biography", "self_introduction")
PHOTO_FIELDS = ("photo_filename", "photo_width", "photo_height", "photo_size", "photo_uploaded_at")

INVITATION_MAX_AGE = timedelta(days=14)
INVITATION_SALT = "portal.speakers.invitation"


class SpeakerError(ValueError):
    """A change that is not allowed; ``message`` is translated for the person."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


class MergeError(SpeakerError):
    pass


class LinkError(SpeakerError):
    pass


class InvitationError(SpeakerError):
    def __init__(self, message, expired: bool = False):
        super().__init__(message)
        self.expired = expired


# -- reading ----------------------------------------------------------------------------------


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


def resolve(session: Session, person_id: int) -> int | None:
    """The surviving record's id for a (possibly merged) person id; None if unknown."""
    seen = set()
    current = person_id
    while current not in seen:
        seen.add(current)
        merged_into = session.scalar(
            sa.select(SpeakerProfile.merged_into_id).where(SpeakerProfile.person_id == current)
        )
        if merged_into is None:
            return current
        current = merged_into
    return current


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
        condition = key.like(search.like_pattern(term), escape="\\")
        if organiser and "@" in term:
            partial = SpeakerProfile.email_key.like(search.like_pattern(term), escape="\\")
            if email_scope is not None:
                partial = sa.or_(sa.and_(email_scope, partial), SpeakerProfile.email_key == term)
            condition = sa.or_(condition, partial)
        conditions.append(condition)
    return conditions


def _sort(lang: str):
    sort = SpeakerProfile.sort_kana if lang == "ja" else SpeakerProfile.sort_roman
    return (sort, SpeakerProfile.person_id)


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


def likely_duplicates_of(session: Session, values: dict) -> list[SpeakerProfile]:
    """Existing records that look like the person described by ``values`` (before creating)."""
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
    if not conditions:
        return []
    return list(
        session.scalars(
            sa.select(SpeakerProfile)
            .where(SpeakerProfile.merged_into_id.is_(None), sa.or_(*conditions))
            .options(joinedload(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
            .order_by(SpeakerProfile.person_id)
            .limit(20)
        ).unique()
    )


# -- invitations ------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITATION_SALT)


def invitation_token(invitation: SpeakerInvitation) -> str:
    return _serializer().dumps({"n": invitation.nonce})


def invitation_url(invitation: SpeakerInvitation, token: str) -> str:
    path = url_for("speakers.invitation", token=token, lang_code=invitation.language)
    return current_app.config["BASE_URL"].rstrip("/") + path


def invite_speaker(
    session: Session, person: Person, email: str, actor, language: str | None = None
) -> tuple[SpeakerInvitation, str]:
    """Email the speaker a signed link (valid 14 days) to complete their own record."""
    email = (email or "").strip()
    if not email:
        raise SpeakerError(_l("Please enter the speaker's email address."))
    profile = ensure_profile(session, person)
    if profile.is_merged:
        raise SpeakerError(_l("This record has been merged into another one."))
    language = language if language in LANGUAGES else person.preferred_language
    now = utcnow()
    invitation = SpeakerInvitation(
        person_id=person.id,
        email=email,
        language=language,
        nonce=secrets.token_urlsafe(24),
        invited_by_id=getattr(actor, "id", None),
        created_at=now,
        expires_at=now + INVITATION_MAX_AGE,
    )
    session.add(invitation)
    session.flush()
    token = invitation_token(invitation)
    queue_email(
        session,
        email,
        "speakers/invitation",
        language,
        person=person,
        name=format_person_name(person, language),
        url=invitation_url(invitation, token),
        expires_at=invitation.expires_at,
        inviter=format_person_name(actor.person, language)
        if getattr(actor, "person", None)
        else "",
    )
    audit.record(
        session, actor, "speaker", person.id, "invited", invitation_id=invitation.id, email=email
    )
    return invitation, token


def load_invitation(
    session: Session,
    token: str,
    now: datetime | None = None,
    max_age: timedelta = INVITATION_MAX_AGE,
) -> SpeakerInvitation:
    """The invitation a link stands for; InvitationError if forged, revoked or expired."""
    invalid = InvitationError(
        _l("This link is not valid. Please ask the organisers for a new one.")
    )
    try:
        payload, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise invalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise invalid
    now = now or utcnow()
    if now - signed_at > max_age:
        raise InvitationError(
            _l("This link has expired. Please ask the organisers for a new one."), expired=True
        )
    invitation = session.scalar(
        sa.select(SpeakerInvitation).where(SpeakerInvitation.nonce == payload["n"])
    )
    if invitation is None or invitation.revoked_at is not None:
        raise invalid
    return invitation


def link_speaker_to_account(session: Session, invitation: SpeakerInvitation, user: User) -> Person:
    """Join the invited speaker record to the logged-in person's account.

    Allowed when the account's person has no speaker data of their own (otherwise the
    organisers merge the two records). The speaker record is merged into the account's
    person, so the account keeps its person and gains the talks and profile.
    """
    speaker = invitation.person
    if user.person_id == speaker.id:
        return speaker
    if speaker.user is not None:
        raise LinkError(_l("This speaker record already belongs to another account."))
    if has_speaker_data(session, user.person):
        raise LinkError(
            _l(
                "Your account already has speaker data. Please ask the organisers to merge the two records."
            )
        )
    merge_speakers(session, user.person, speaker, user, reason="linked_account")
    return user.person


# -- merging ----------------------------------------------------------------------------------

# Columns that refer to people.id but describe the merge itself, or that merge_speakers
# handles field by field.
MERGE_SKIP = {
    ("speaker_merges", "survivor_id"),
    ("speaker_merges", "merged_id"),
    ("speaker_profiles", "person_id"),
}
PERSON_MERGE_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "romanized_name",
    "email",
    "affiliation",
    "sector",
    "country",
)
TABLE_LABELS = {"users": _l("an account")}


def people_references() -> list[tuple[sa.Table, sa.Column]]:
    """Every (table, column) with a foreign key to people.id, in every loaded model."""
    from portal.models import load_all_models

    metadata = load_all_models()
    people = metadata.tables["people"]
    found = []
    for table in metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            if fk.column.table is people and (table.name, fk.parent.name) not in MERGE_SKIP:
                found.append((table, fk.parent))
    return found


def _unique_sets(table: sa.Table, column: sa.Column) -> list[set]:
    sets = []
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint):
            cols = set(constraint.columns)
            if column in cols:
                sets.append(cols)
    for index in table.indexes:
        if index.unique and column in set(index.columns):
            sets.append(set(index.columns))
    if column.unique:
        sets.append({column})
    return sets


def merge_conflicts(session: Session, survivor_id: int, merged_id: int) -> list[str]:
    """Tables where both people have a row that may exist only once (e.g. both have an account)."""
    conflicts = []
    for table, column in people_references():
        for cols in _unique_sets(table, column):
            others = [c for c in cols if c is not column]
            a, b = table.alias("a"), table.alias("b")
            stmt = sa.select(sa.literal(1)).select_from(a).where(a.c[column.name] == merged_id)
            stmt = stmt.join(
                b,
                sa.and_(
                    b.c[column.name] == survivor_id,
                    *(a.c[o.name] == b.c[o.name] for o in others),
                ),
            )
            if session.execute(stmt.limit(1)).first() is not None:
                conflicts.append(str(TABLE_LABELS.get(table.name, table.name)))
                break
    return conflicts


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def _snapshot(person: Person, profile: SpeakerProfile | None) -> dict:
    data = {
        "person": {
            name: _plain(getattr(person, name))
            for name in (*PERSON_MERGE_FIELDS, "preferred_language")
        },
        "name_ja": format_person_name(person, "ja"),
        "name_en": format_person_name(person, "en"),
    }
    if profile is not None:
        data["profile"] = {
            **{name: getattr(profile, name).as_dict() for name in PROFILE_TEXT_FIELDS},
            "links": list(profile.links or []),
            "photo_filename": profile.photo_filename,
            "publish_consent": profile.publish_consent,
        }
    return data


def merge_speakers(
    session: Session, survivor: Person, merged: Person, actor, reason: str = "duplicate"
) -> SpeakerMerge:
    """Merge ``merged`` into ``survivor``: nothing is lost.

    Every row in any table that refers to the merged person (talks, affiliations,
    invitations, abstracts' authors, registrations, an account…) moves to the survivor;
    person and profile fields empty on the survivor are filled from the merged record; the
    merged record is anonymised and marked ``merged_into``; a SpeakerMerge row keeps who,
    when, what moved and a snapshot of the merged record; an audit entry is written.
    """
    if survivor.id == merged.id:
        raise MergeError(_l("A record cannot be merged into itself."))
    survivor_profile = ensure_profile(session, survivor)
    merged_profile = session.scalar(
        sa.select(SpeakerProfile).where(SpeakerProfile.person_id == merged.id)
    )
    if survivor_profile.is_merged or (merged_profile is not None and merged_profile.is_merged):
        raise MergeError(_l("One of these records has already been merged."))
    session.flush()
    conflicts = merge_conflicts(session, survivor.id, merged.id)
    if conflicts:
        raise MergeError(
            _l(
                "These records cannot be merged because both have %(what)s.",
                what=", ".join(conflicts),
            )
        )
    snapshot = _snapshot(merged, merged_profile)

    moved: dict[str, list] = {}
    for table, column in people_references():
        pk = list(table.primary_key.columns)
        where = column == merged.id
        if len(pk) == 1:
            ids = [row[0] for row in session.execute(sa.select(pk[0]).where(where))]
        else:
            ids = [list(row) for row in session.execute(sa.select(*pk).where(where))]
        if not ids:
            continue
        session.execute(sa.update(table).where(where).values({column.name: survivor.id}))
        moved[f"{table.name}.{column.name}"] = ids
    # The rows changed underneath the ORM: reload everything (all was flushed above).
    session.expire_all()

    filled = []
    # A survivor without any profile content of its own (e.g. an account's person that is
    # linked to its speaker record) takes the other record's consent along with its content.
    survivor_was_empty = not (
        any(getattr(survivor_profile, f) for f in PROFILE_TEXT_FIELDS)
        or survivor_profile.links
        or survivor_profile.photo_filename
    )
    for name in PERSON_MERGE_FIELDS:
        if not getattr(survivor, name) and getattr(merged, name):
            setattr(survivor, name, getattr(merged, name))
            filled.append(name)
    if merged_profile is not None:
        for name in PROFILE_TEXT_FIELDS:
            mine, theirs = getattr(survivor_profile, name), getattr(merged_profile, name)
            value = BilingualText(ja=mine.ja or theirs.ja, en=mine.en or theirs.en)
            for lang in LANGUAGES:
                if not getattr(mine, lang) and getattr(theirs, lang):
                    filled.append(f"{name}.{lang}")
            setattr(survivor_profile, name, value)
        urls = {link["url"] for link in survivor_profile.links or []}
        extra = [link for link in merged_profile.links or [] if link["url"] not in urls]
        if extra:
            survivor_profile.links = [*(survivor_profile.links or []), *extra]
            filled.append("links")
        if not survivor_profile.photo_filename and merged_profile.photo_filename:
            for name in PHOTO_FIELDS:
                setattr(survivor_profile, name, getattr(merged_profile, name))
                setattr(merged_profile, name, None)
            filled.append("photo")
        if survivor_was_empty and merged_profile.publish_consent:
            if not survivor_profile.publish_consent:
                survivor_profile.publish_consent = True
                survivor_profile.consent_changed_at = utcnow()
                filled.append("publish_consent")
        merged_profile.merged_into_id = survivor.id
        merged_profile.merged_at = utcnow()
        merged_profile.publish_consent = False
    else:
        merged_profile = SpeakerProfile(
            person_id=merged.id, links=[], merged_into_id=survivor.id, merged_at=utcnow()
        )
        session.add(merged_profile)

    # The merged record keeps no personal data of its own (the snapshot has it).
    for name in ("family_name", "given_name", "family_name_kana", "given_name_kana"):
        setattr(merged, name, "")
    merged.romanized_name = ""
    merged.email = None
    merged.affiliation = ""
    merged.anonymised_at = utcnow()

    record = SpeakerMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        merged_by_id=getattr(actor, "id", None),
        merged_at=utcnow(),
        reason=reason,
        snapshot=snapshot,
        moved=moved,
        filled=filled,
    )
    session.add(record)
    session.flush()
    search.apply_keys(merged_profile, merged, [])
    search.refresh(session, [survivor.id])
    counts = {name: len(ids) for name, ids in moved.items()}
    audit.record(
        session,
        actor,
        "speaker",
        survivor.id,
        "merged",
        merge_id=record.id,
        merged_id=merged.id,
        moved=counts,
        filled=filled,
        reason=reason,
    )
    audit.record(
        session, actor, "speaker", merged.id, "merged_into", merge_id=record.id, into=survivor.id
    )
    return record


def merges(session: Session) -> sa.Select:
    return (
        sa.select(SpeakerMerge)
        .options(joinedload(SpeakerMerge.survivor), joinedload(SpeakerMerge.merged_by))
        .order_by(SpeakerMerge.merged_at.desc(), SpeakerMerge.id.desc())
    )


def merges_of(session: Session, person_id: int) -> list[SpeakerMerge]:
    """The merges a record took part in, newest first."""
    return list(
        session.scalars(
            merges(session).where(
                sa.or_(SpeakerMerge.survivor_id == person_id, SpeakerMerge.merged_id == person_id)
            )
        ).unique()
    )


# -- likely duplicates ------------------------------------------------------------------------

DUPLICATE_REASONS = {
    "email": _l("Same email address"),
    "romanised": _l("Same romanised name"),
    "name": _l("Same name in Japanese script"),
    "kana": _l("Same kana reading"),
}


@dataclass
class DuplicatePair:
    first: SpeakerProfile
    second: SpeakerProfile
    reasons: list[str]

    @property
    def reason_labels(self) -> list[str]:
        return [str(DUPLICATE_REASONS[r]) for r in self.reasons]


def find_duplicates(session: Session, limit: int = 100) -> list[DuplicatePair]:
    """Pairs of records that are likely the same person (five queries, whatever the size)."""
    keys = {
        "email": SpeakerProfile.email_key,
        "romanised": SpeakerProfile.roman_key,
        "name": SpeakerProfile.name_key,
        "kana": SpeakerProfile.kana_key,
    }
    live = sa.and_(SpeakerProfile.merged_into_id.is_(None), Person.anonymised_at.is_(None))
    pairs: dict[tuple[int, int], list[str]] = {}
    for reason, column in keys.items():
        repeated = (
            sa.select(column)
            .join(SpeakerProfile.person)
            .where(live, column != "")
            .group_by(column)
            .having(sa.func.count() > 1)
        )
        groups: dict[str, list[int]] = {}
        rows = session.execute(
            sa.select(SpeakerProfile.person_id, column)
            .join(SpeakerProfile.person)
            .where(live, column.in_(repeated))
            .order_by(SpeakerProfile.person_id)
        )
        for person_id, key in rows:
            groups.setdefault(key, []).append(person_id)
        for ids in groups.values():
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    pairs.setdefault((a, b), []).append(reason)
    chosen = sorted(pairs)[:limit]
    ids = {i for pair in chosen for i in pair}
    profiles = {
        p.person_id: p
        for p in session.scalars(
            sa.select(SpeakerProfile)
            .where(SpeakerProfile.person_id.in_(ids))
            .options(joinedload(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
        ).unique()
    }
    return [DuplicatePair(profiles[a], profiles[b], pairs[(a, b)]) for a, b in chosen]


# -- export -----------------------------------------------------------------------------------

CSV_COLUMNS = (
    ("id", _l("ID")),
    ("family_name", _l("Family name")),
    ("given_name", _l("Given name")),
    ("family_name_kana", _l("Family name (kana)")),
    ("given_name_kana", _l("Given name (kana)")),
    ("romanized_name", _l("Name in Latin letters")),
    ("email", _l("Email")),
    ("country", _l("Country")),
    ("title_ja", _l("Honorific title (Japanese)")),
    ("title_en", _l("Honorific title (English)")),
    ("position_ja", _l("Position (Japanese)")),
    ("position_en", _l("Position (English)")),
    ("affiliation_ja", _l("Affiliation (Japanese)")),
    ("affiliation_en", _l("Affiliation (English)")),
    ("biography_ja", _l("Biography (Japanese)")),
    ("biography_en", _l("Biography (English)")),
    ("self_introduction_ja", _l("Self-introduction (Japanese)")),
    ("self_introduction_en", _l("Self-introduction (English)")),
    ("links", _l("Links")),
    ("publish_consent", _l("Consent to publish")),
    ("talks", _l("Talks")),
)

_cell = safe_cell


def speakers_csv_rows(session: Session):
    """The speakers CSV, the header first, one row at a time: one statement on narrow columns
    (the current affiliation and the number of talks joined in), read 500 rows at a time, so
    neither memory nor the number of statements grows with the number of speakers."""
    yield [str(label) for _, label in CSV_COLUMNS]
    talks = (
        sa.select(Talk.speaker_id, sa.func.count().label("n"))
        .where(Talk.speaker_id.is_not(None))
        .group_by(Talk.speaker_id)
        .subquery()
    )
    # current_affiliation() in SQL: the open-ended (or not yet ended) entry that started last.
    other = sa.orm.aliased(Affiliation)
    current = (
        sa.select(other.id)
        .where(
            other.person_id == Person.id,
            sa.or_(other.ended_on.is_(None), other.ended_on >= date.today()),
        )
        .order_by(sa.func.coalesce(other.started_on, date.min).desc(), other.id.desc())
        .limit(1)
        .correlate(Person)
        .scalar_subquery()
    )
    stmt = (
        sa.select(
            Person.id,
            *(getattr(Person, name) for name in PERSON_FIELDS),
            Person.affiliation,
            Person.email,
            SpeakerProfile.links,
            SpeakerProfile.publish_consent,
            *(getattr(SpeakerProfile, name) for name in PROFILE_TEXT_FIELDS),
            sa.func.coalesce(talks.c.n, 0).label("talks"),
            Affiliation.organisation,
        )
        .select_from(SpeakerProfile)
        .join(Person, Person.id == SpeakerProfile.person_id)
        .outerjoin(talks, talks.c.speaker_id == Person.id)
        .outerjoin(Affiliation, Affiliation.id == current)
        .where(SpeakerProfile.merged_into_id.is_(None), Person.anonymised_at.is_(None))
        .order_by(SpeakerProfile.sort_kana, SpeakerProfile.person_id)
        .execution_options(yield_per=500)
    )
    for r in session.execute(stmt):
        row = {
            "id": r.id,
            **{name: getattr(r, name) for name in PERSON_FIELDS},
            "email": r.email or "",
            "links": " ".join(link["url"] for link in r.links or []),
            "publish_consent": "1" if r.publish_consent else "0",
            "talks": r.talks,
            "affiliation_ja": r.organisation.ja if r.organisation else r.affiliation,
            "affiliation_en": r.organisation.en if r.organisation else "",
        }
        for name in PROFILE_TEXT_FIELDS:
            row[f"{name}_ja"] = getattr(r, name).ja
            row[f"{name}_en"] = getattr(r, name).en
        yield [row[key] for key, _ in CSV_COLUMNS]


# -- personal data ----------------------------------------------------------------------------


def speaker_personal_data(session: Session, person: Person) -> dict:
    """What the speaker records hold about a person (for their data download)."""
    profile = session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    affiliations = session.scalars(
        sa.select(Affiliation).where(Affiliation.person_id == person.id).order_by(Affiliation.id)
    )
    talks = session.scalars(sa.select(Talk).where(Talk.speaker_id == person.id).order_by(Talk.id))
    data: dict = {
        "affiliations": [
            {
                "organisation": a.organisation.as_dict(),
                "position": a.position.as_dict(),
                "from": a.started_on.isoformat() if a.started_on else None,
                "to": a.ended_on.isoformat() if a.ended_on else None,
            }
            for a in affiliations
        ],
        "talks": [
            {"id": t.id, "event_id": t.event_id, "self_introduction": t.self_introduction.as_dict()}
            for t in talks
        ],
    }
    if profile is not None:
        data["profile"] = {
            **{name: getattr(profile, name).as_dict() for name in PROFILE_TEXT_FIELDS},
            "links": list(profile.links or []),
            "photo": bool(profile.photo_filename),
            "publish_consent": profile.publish_consent,
        }
    return data


def forget_speaker(session: Session, person: Person) -> None:
    """Erase the speaker data of a person who deleted their account.

    Talks stay in the programme (the accounts area blanks the name); the profile's texts,
    links and photo, the affiliation history, talk-specific self-introductions and open
    invitations go.
    """
    profile = session.scalar(sa.select(SpeakerProfile).where(SpeakerProfile.person_id == person.id))
    if profile is not None:
        if profile.photo_filename:
            photos_after_commit(session, remove=profile.photo_filename)
        for name in PROFILE_TEXT_FIELDS:
            setattr(profile, name, BilingualText())
        for name in PHOTO_FIELDS:
            setattr(profile, name, None)
        profile.links = []
        profile.publish_consent = False
        profile.consent_changed_at = utcnow()
    session.execute(sa.delete(Affiliation).where(Affiliation.person_id == person.id))
    for talk in session.scalars(sa.select(Talk).where(Talk.speaker_id == person.id)):
        talk.self_introduction = BilingualText()
    session.execute(
        sa.update(SpeakerInvitation)
        .where(SpeakerInvitation.person_id == person.id, SpeakerInvitation.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.flush()
    search.refresh(session, [person.id])
    audit.record(session, None, "speaker", person.id, "forgotten")


# -- maintenance ------------------------------------------------------------------------------


def reindex(session: Session) -> int:
    """Give every person with a talk a profile and recompute every key; returns how many."""
    ids = set(session.scalars(sa.select(Talk.speaker_id).where(Talk.speaker_id.is_not(None))))
    ids |= set(session.scalars(sa.select(SpeakerProfile.person_id)))
    search.refresh(session, ids, create_for=ids)
    session.flush()
    return len(ids)
