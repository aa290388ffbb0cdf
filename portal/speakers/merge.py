"""Merging two records of one speaker, and finding the pairs that are likely one person.

``merge_speakers(session, survivor, merged, actor)`` moves every row that refers to the merged
person (any table with a foreign key to people.id) to the survivor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import LazyString, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from portal import audit
from portal.accounts.models import Person
from portal.db import utcnow
from portal.i18n import LANGUAGES, BilingualText, format_person_name
from portal.speakers import search
from portal.speakers.models import (
    SpeakerMerge,
    SpeakerProfile,
)
from portal.speakers.records import (
    PHOTO_FIELDS,
    PROFILE_TEXT_FIELDS,
    MergeError,
    ensure_profile,
    photos_after_commit,
)

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
    "institution_id",
    "sector",
    "country",
)
TABLE_LABELS = {
    "users": _l("an account"),
    "member_company_people": _l("a place in the same member company"),
    "abstract_review_assignments": _l("a review assignment for the same abstract"),
}

# Field names as the merge pages show them (the stored snapshot keeps the code names).
FIELD_LABELS = {
    "family_name": _l("Family name"),
    "given_name": _l("Given name"),
    "family_name_kana": _l("Family name (kana)"),
    "given_name_kana": _l("Given name (kana)"),
    "romanized_name": _l("Name in Latin letters"),
    "email": _l("Email"),
    "affiliation": _l("Affiliation"),
    "institution_id": _l("Institution"),
    "sector": _l("Sector"),
    "country": _l("Country or region"),
    "preferred_language": _l("Language for emails"),
    "title": _l("Honorific title"),
    "position": _l("Position"),
    "biography": _l("Biography"),
    "self_introduction": _l("Self-introduction"),
    "links": _l("Links"),
    "photo": _l("Photo"),
    "photo_filename": _l("Photo"),
    "publish_consent": _l("Consent to publish the profile"),
    "title.ja": _l("Honorific title (Japanese)"),
    "title.en": _l("Honorific title (English)"),
    "position.ja": _l("Position (Japanese)"),
    "position.en": _l("Position (English)"),
    "biography.ja": _l("Biography (Japanese)"),
    "biography.en": _l("Biography (English)"),
    "self_introduction.ja": _l("Self-introduction (Japanese)"),
    "self_introduction.en": _l("Self-introduction (English)"),
}
# Where moved rows came from, by "table.column".
MOVED_LABELS = {
    "talks.speaker_id": _l("Talks"),
    "speaker_affiliations.person_id": _l("Affiliations"),
    "speaker_invitations.person_id": _l("Invitations"),
    "registrations.person_id": _l("Event registrations"),
    "users.person_id": _l("Account"),
}


def field_label(name: str) -> str:
    """A snapshot or filled field's name in the reader's language (the code name if unknown)."""
    return str(FIELD_LABELS.get(name, name))


def moved_label(name: str) -> str:
    return str(MOVED_LABELS.get(name, name))


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


# Tables whose clashes merge_speakers resolves itself (both records registered for one event:
# one registration survives, the other is cancelled and stays with the merged record).
RESOLVED_CLASHES = {"registrations"}


def merge_conflicts(session: Session, survivor_id: int, merged_id: int) -> list[str]:
    """Tables where both people have a row that may exist only once (e.g. both have an account);
    ``TABLE_LABELS`` names them for people."""
    conflicts = []
    for table, column in people_references():
        if table.name in RESOLVED_CLASHES:
            continue
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
                conflicts.append(table.name)
                break
    return conflicts


# -- both records registered for one event ----------------------------------------------------

# Which registration survives by default: the one furthest along (paid or confirmed first).
STATE_PREFERENCE = {
    "attended": 4,
    "confirmed": 3,
    "pending_payment": 2,
    "waitlisted": 1,
    "cancelled": 0,
}


@dataclass
class RegistrationClash:
    """Both records are registered for one event: ``first`` is the first record's."""

    event: object
    first: object
    second: object

    @property
    def default(self):
        """The registration kept unless the organiser chooses: the paid or confirmed one
        (the further state), on a tie the first record's."""
        a, b = self.first, self.second
        rank = STATE_PREFERENCE.get
        return b if rank(b.state.value, 0) > rank(a.state.value, 0) else a

    @property
    def registrations(self) -> tuple:
        return (self.first, self.second)


def registration_clashes(session: Session, first_id: int, second_id: int) -> list:
    """The events both records are registered for (cancelled registrations too), by date."""
    from portal.events.models import Event
    from portal.registration.models import Registration

    other = aliased(Registration)
    rows = session.execute(
        sa.select(Registration, other)
        .join(other, sa.and_(other.event_id == Registration.event_id, other.person_id == second_id))
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.person_id == first_id)
        .options(joinedload(Registration.event))
        .order_by(Event.starts_at, Event.id)
    ).all()
    return [RegistrationClash(event=a.event, first=a, second=b) for a, b in rows]


def _resolve_registrations(
    session: Session, survivor: Person, merged: Person, actor, keep: dict | None
) -> tuple[list[dict], set[int], list[int]]:
    """Cancel the losing registration of every clash (history kept, through the registration
    transitions). Returns what was decided, the losing registrations of the merged record
    (they stay with it) and those of the survivor (moved to the merged record afterwards)."""
    from portal.registration import changes

    keep = keep or {}
    decided, stay, swap = [], set(), []
    for clash in registration_clashes(session, survivor.id, merged.id):
        wanted = keep.get(clash.event.id)
        if wanted is None:
            kept = clash.default
        else:
            kept = next((r for r in clash.registrations if r.id == wanted), None)
            if kept is None:
                raise MergeError(
                    _l(
                        "Please choose which registration for %(event)s to keep.",
                        event=str(clash.event.title),
                    )
                )
        lost = clash.second if kept is clash.first else clash.first
        old_state = lost.state.value
        if lost.is_active:
            changes.cancel(
                session,
                lost,
                actor=actor,
                reason=f"merge of speaker #{merged.id} into #{survivor.id}",
                action="cancelled_by_merge",
                email="",
            )
        if lost.person_id == merged.id:
            stay.add(lost.id)
        else:
            swap.append(lost.id)
        decided.append(
            {
                "event_id": clash.event.id,
                "kept": kept.id,
                "cancelled": lost.id,
                "cancelled_state": old_state,
            }
        )
    return decided, stay, swap


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
    session: Session,
    survivor: Person,
    merged: Person,
    actor,
    reason: str = "duplicate",
    keep_registrations: dict[int, int] | None = None,
) -> SpeakerMerge:
    """Merge ``merged`` into ``survivor``: nothing is lost.

    Every row in any table that refers to the merged person (talks, affiliations,
    invitations, abstracts' authors, registrations, an account…) moves to the survivor;
    person and profile fields empty on the survivor are filled from the merged record; the
    merged record is anonymised and marked ``merged_into``; a SpeakerMerge row keeps who,
    when, what moved and a snapshot of the merged record; an audit entry is written.

    When both are registered for one event, the registration in ``keep_registrations``
    (event id → registration id; default: the paid or confirmed one) moves to the survivor and
    the other is cancelled (audited, no email) and stays with the merged record, so its history
    is kept.
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
        # Translated when shown, in the reader's language (the labels too).
        raise MergeError(
            LazyString(
                lambda: gettext(
                    "These records cannot be merged because both have %(what)s.",
                    what=", ".join(str(TABLE_LABELS.get(c, c)) for c in conflicts),
                )
            )
        )
    snapshot = _snapshot(merged, merged_profile)
    decided, stay, swap = _resolve_registrations(
        session, survivor, merged, actor, keep_registrations
    )
    placeholder = None
    if swap:
        # The survivor's cancelled registration goes to the merged record; a registration is
        # unique per (event, person), so it waits on a placeholder while the other one moves.
        placeholder = Person(anonymised_at=utcnow())
        session.add(placeholder)
    session.flush()
    registrations = sa.inspect(_registration_model()).local_table
    if swap:
        session.execute(
            sa.update(registrations)
            .where(registrations.c.id.in_(swap))
            .values(person_id=placeholder.id)
        )

    moved: dict[str, list] = {}
    for table, column in people_references():
        pk = list(table.primary_key.columns)
        where = column == merged.id
        if table is registrations and stay:
            where = sa.and_(where, table.c.id.not_in(stay))
        if len(pk) == 1:
            ids = [row[0] for row in session.execute(sa.select(pk[0]).where(where))]
        else:
            ids = [list(row) for row in session.execute(sa.select(*pk).where(where))]
        if not ids:
            continue
        session.execute(sa.update(table).where(where).values({column.name: survivor.id}))
        moved[f"{table.name}.{column.name}"] = ids
    if swap:
        session.execute(
            sa.update(registrations).where(registrations.c.id.in_(swap)).values(person_id=merged.id)
        )
        session.execute(sa.delete(Person.__table__).where(Person.id == placeholder.id))
    # The rows changed underneath the ORM: reload everything (all was flushed above).
    session.expire_all()
    if placeholder is not None:
        session.expunge(placeholder)

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
        # The merged record keeps no personal data of its own (the snapshot has it): its texts,
        # links and a photo the survivor did not take go.
        for name in PROFILE_TEXT_FIELDS:
            setattr(merged_profile, name, BilingualText())
        merged_profile.links = []
        if merged_profile.photo_filename:
            photos_after_commit(session, remove=merged_profile.photo_filename)
            for name in PHOTO_FIELDS:
                setattr(merged_profile, name, None)
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
    merged.institution_id = None
    merged.sector = None
    merged.country = ""
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
    if decided:
        record.snapshot = {**snapshot, "registrations": decided}
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
        registrations=decided,
    )
    audit.record(
        session, actor, "speaker", merged.id, "merged_into", merge_id=record.id, into=survivor.id
    )
    return record


def _registration_model():
    from portal.registration.models import Registration

    return Registration


def merges(session: Session) -> sa.Select:
    return (
        sa.select(SpeakerMerge)
        .options(joinedload(SpeakerMerge.survivor), joinedload(SpeakerMerge.merged_by))
        .order_by(SpeakerMerge.merged_at.desc(), SpeakerMerge.id.desc())
    )


def merge_record(session: Session, merge_id: int) -> SpeakerMerge | None:
    """One merge, with its survivor and the organiser who merged."""
    return session.scalars(merges(session).where(SpeakerMerge.id == merge_id)).first()


def talk_counts(session: Session, person_ids) -> dict[int, int]:
    """How many talks each of the records gives (one query)."""
    from portal.events.models import Talk

    rows = session.execute(
        sa.select(Talk.speaker_id, sa.func.count())
        .where(Talk.speaker_id.in_(list(person_ids)))
        .group_by(Talk.speaker_id)
    )
    found = {speaker_id: count for speaker_id, count in rows}
    return {person_id: found.get(person_id, 0) for person_id in person_ids}


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
    "reading": _l("Same reading in another script"),
}
# "reading" is only given when none of these already pairs the two records.
_SAME_SCRIPT = {"romanised", "name", "kana"}


@dataclass
class DuplicatePair:
    first: SpeakerProfile
    second: SpeakerProfile
    reasons: list[str]

    @property
    def reason_labels(self) -> list[str]:
        return [str(DUPLICATE_REASONS[r]) for r in self.reasons]


def find_duplicates(session: Session, limit: int = 100) -> list[DuplicatePair]:
    """Pairs of records that are likely the same person (six queries, whatever the size).

    Names are compared in each script and across scripts (``reading_key``: kanji with its kana
    reading, a name typed in kana, romanised names with Hepburn variants folded)."""
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
    # The reading across scripts: every live key (short strings), so that a reading written
    # as one word (「さとうけん」) meets the same reading in two words ("Ken Sato").
    by_key: dict[str, list[int]] = {}
    for person_id, key in session.execute(
        sa.select(SpeakerProfile.person_id, SpeakerProfile.reading_key)
        .join(SpeakerProfile.person)
        .where(live, SpeakerProfile.reading_key != "")
        .order_by(SpeakerProfile.person_id)
    ):
        by_key.setdefault(key, []).append(person_id)
    for key, ids in by_key.items():
        for candidate in search.reading_candidates(key):
            for a in ids:
                for b in by_key.get(candidate, ()):
                    if a == b:
                        continue
                    found = pairs.setdefault((min(a, b), max(a, b)), [])
                    if "reading" not in found and not _SAME_SCRIPT.intersection(found):
                        found.append("reading")
    for pair in [p for p, reasons in pairs.items() if not reasons]:
        del pairs[pair]
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
