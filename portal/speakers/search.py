"""Search keys for speakers: names in any script and affiliations, folded to one form.

``fold(text)``: NFKC (full-width letters and half-width kana become ordinary ones), lower
case, katakana folded to hiragana, accents dropped from Latin letters (Ō → o). A query is
folded the same way and split on spaces; every piece must occur in the stored key.

The keys live on ``SpeakerProfile`` (``search_key``, ``sort_kana``, ``sort_roman`` and the
duplicate keys ``name_key``, ``kana_key``, ``roman_key``, ``email_key``, ``reading_key``).
``apply_keys``
computes them; the speaker services call it, and a session listener (``install``) also
refreshes them whenever a Person's names change elsewhere (the accounts pages) or a talk is
given a speaker, so the keys never go stale.
"""

from __future__ import annotations

import re
from itertools import chain

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from portal.accounts.models import Person
from portal.accounts.search import romaji, short_vowels
from portal.events.models import Talk
from portal.speakers.models import SEARCH_KEY_LENGTH, SORT_KEY_LENGTH, Affiliation, SpeakerProfile
from portal.text import compact, fold

SEPARATOR = "|"

PERSON_KEY_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "romanized_name",
    "email",
    "affiliation",
)


def query_terms(query: str | None) -> list[str]:
    """The pieces of a search query, folded; every one must match."""
    return [t for t in fold(query).split() if t.replace(SEPARATOR, "")][:8]


def roman_key(romanized: str | None) -> str:
    """Romanised name with its words sorted: "YAMADA, Taro" and "Taro Yamada" agree."""
    words = re.findall(r"[^\W_]+", fold(romanized))
    return " ".join(sorted(words))


# -- the reading, whatever script it was typed in -------------------------------------------

_KANA_ONLY = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\s・]+")


def is_kana(text: str | None) -> bool:
    """Whether ``text`` is written in kana only (「さとう けん」, 「サトウ」)."""
    return bool(text and text.strip()) and _KANA_ONLY.fullmatch(fold(text)) is not None


def hepburn(word: str) -> str:
    """One romanised word with the Hepburn variants folded: Satō, Sato, Satou and Satoh all
    become sato; Homma and Honma honma; Shin'ichi shinichi."""
    word = re.sub(r"[^a-z]", "", fold(word))
    word = re.sub(r"oh(?![aeiou])", "o", word)
    word = re.sub(r"m(?=[bmp])", "n", word)
    return short_vowels(word)


def reading_key(person) -> str:
    """The name as it sounds, in folded romaji with the words sorted, from the kana reading,
    else a name typed in kana, else the romanised name: 佐藤 健 (さとう けん), 「さとう けん」
    and "SATOH Ken" all give "ken sato"."""
    kana = [
        word
        for field in (person.family_name_kana, person.given_name_kana)
        for word in fold(field).split()
    ]
    if not kana and is_kana((person.family_name or "") + (person.given_name or "")):
        kana = [
            word
            for field in (person.family_name, person.given_name)
            for word in fold(field).split()
        ]
    if kana:
        words = [hepburn(romaji(word)) for word in kana]
    else:
        words = [hepburn(word) for word in re.split(r"[\s,]+", fold(person.romanized_name))]
    return " ".join(sorted(w for w in words if w))


def reading_candidates(key: str | None) -> set[str]:
    """The reading keys that sound the same as ``key``: a reading written as one word
    (「さとうけん」 → "satoken") may be any split of it ("ken sato"), and words may be written
    together in either order ("ken sato" → "kensato", "satoken")."""
    key = key or ""
    if not key:
        return set()
    words = key.split()
    if len(words) == 1:
        return {key} | {" ".join(sorted((key[:i], key[i:]))) for i in range(2, len(key) - 1)}
    return {key, "".join(words), "".join(reversed(words))}


def native_name(person) -> str:
    return compact((person.family_name or "") + (person.given_name or ""))


def kana_name(person) -> str:
    return compact((person.family_name_kana or "") + (person.given_name_kana or ""))


def search_key(person, organisations: list[str] | None) -> str:
    """Names (every script, both word orders) then affiliations, within the length limit.

    ``organisations=None`` gives the names only (the public key of an unpublished profile).
    """
    roman_words = fold(person.romanized_name).split()
    kana = kana_name(person) or (native_name(person) if is_kana(native_name(person)) else "")
    reading = romaji(kana) if kana else ""
    parts = [
        native_name(person),
        kana_name(person),
        reading,
        short_vowels(reading),
        "".join(roman_words),
        "".join(reversed(roman_words)),
    ]
    seen: list[str] = []
    for part in parts:
        if part and not any(part in other for other in seen):
            seen.append(part)
    key = SEPARATOR.join(seen)
    if organisations is None:
        return key[:SEARCH_KEY_LENGTH]
    seen = set()
    for organisation in (person.affiliation, *organisations):
        part = compact(organisation)
        if not part or part in seen:
            continue
        seen.add(part)
        if len(key) + len(part) + 1 > SEARCH_KEY_LENGTH:
            break
        key = f"{key}{SEPARATOR}{part}" if key else part
    return key[:SEARCH_KEY_LENGTH]


def apply_keys(profile, person, affiliations) -> bool:
    """Set the profile's search, sort and duplicate keys; True if anything changed."""
    organisations = []
    for affiliation in affiliations:
        organisations.extend((affiliation.organisation.ja, affiliation.organisation.en))
    full = search_key(person, organisations)
    values = {
        "search_key": full,
        # Affiliations are searchable by the public only when the profile is published.
        "public_search_key": full if profile.publish_consent else search_key(person, None),
        "sort_kana": (kana_name(person) or native_name(person) or compact(person.romanized_name))[
            :SORT_KEY_LENGTH
        ],
        "sort_roman": (fold(person.romanized_name).strip() or native_name(person))[
            :SORT_KEY_LENGTH
        ],
        "name_key": native_name(person)[:200],
        "kana_key": kana_name(person)[:200],
        "roman_key": roman_key(person.romanized_name)[:200],
        "email_key": (person.email or "").strip().lower()[:254],
        "reading_key": reading_key(person)[:200],
    }
    changed = False
    for name, value in values.items():
        if getattr(profile, name, None) != value:
            setattr(profile, name, value)
            changed = True
    return changed


# -- keeping the keys current ------------------------------------------------------------------

_PENDING = "speakers_refresh"  # person ids whose keys to refresh after this flush
_NEEDED = "speakers_profile_needed"  # person ids that became speakers (given a talk)


def _changed(obj, names) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _after_flush(session: Session, _flush_context) -> None:

    pending = session.info.setdefault(_PENDING, set())
    needed = session.info.setdefault(_NEEDED, set())
    for obj in chain(session.new, session.dirty):
        if isinstance(obj, Talk):
            if obj.speaker_id and (obj in session.new or _changed(obj, ("speaker_id",))):
                pending.add(obj.speaker_id)
                needed.add(obj.speaker_id)
        elif isinstance(obj, Person):
            if obj not in session.new and _changed(obj, PERSON_KEY_FIELDS):
                pending.add(obj.id)
        elif isinstance(obj, Affiliation):
            pending.add(obj.person_id)
        elif isinstance(obj, SpeakerProfile):
            if obj in session.new or _changed(obj, ("publish_consent",)):
                pending.add(obj.person_id)
    for obj in session.deleted:
        if isinstance(obj, Affiliation):
            pending.add(obj.person_id)
    pending.discard(None)


def _after_flush_postexec(session: Session, _flush_context) -> None:
    pending = session.info.pop(_PENDING, set())
    needed = session.info.pop(_NEEDED, set())
    if pending:
        with session.no_autoflush:
            refresh(session, pending, create_for=needed)


def refresh(session: Session, person_ids, create_for=()) -> None:
    """Recompute the keys of these people's profiles (creating one for new speakers).

    Changes are picked up by the next flush (``commit`` flushes until nothing is left).
    """

    ids = sorted(set(person_ids))
    if not ids:
        return
    profiles = {
        p.person_id: p
        for p in session.scalars(sa.select(SpeakerProfile).where(SpeakerProfile.person_id.in_(ids)))
    }
    people = {p.id: p for p in session.scalars(sa.select(Person).where(Person.id.in_(ids)))}
    affiliations: dict[int, list] = {}
    for row in session.scalars(sa.select(Affiliation).where(Affiliation.person_id.in_(ids))):
        affiliations.setdefault(row.person_id, []).append(row)
    for person_id in ids:
        person = people.get(person_id)
        if person is None:
            continue
        profile = profiles.get(person_id)
        if profile is None:
            if person_id not in create_for:
                continue
            profile = SpeakerProfile(person_id=person_id)
            session.add(profile)
        apply_keys(profile, person, affiliations.get(person_id, []))


_installed = False


def install() -> None:
    """Listen to every ORM session (once) so that the keys follow the data."""
    global _installed
    if _installed:
        return
    sa_event.listen(Session, "after_flush", _after_flush)
    sa_event.listen(Session, "after_flush_postexec", _after_flush_postexec)
    _installed = True
