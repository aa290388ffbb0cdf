"""One folded search key per person, and the search condition that uses it.

``Person.search_key`` holds, folded by ``fold`` (NFKC: full-width Latin and half-width kana
become ordinary; lower case; katakana → hiragana) and without spaces, separated by ``|``:
the name in its own script (family + given), the kana reading, the reading in Hepburn romaji
(also without long vowels: さとう → satou and sato), the romanised name in both word orders,
and the email address. A query is folded the same way and split on spaces; every piece must
occur in the key. So 「タカハシ」, 「たかはし」, 「ﾀｶﾊｼ」, "takahashi" and "ＴＡＫＡＨＡＳＨＩ"
all find 高橋 (たかはし).

The key is kept fresh by a session listener (``install``): whenever a Person is added or
one of its names or its email changes, the key is computed again before the flush. On
PostgreSQL a trigram index (pg_trgm, GIN) serves ``LIKE '%…%'`` on it for the global
searches; searches within an event start from that event's registrations.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from portal.text import compact, fold, like_pattern

SEARCH_KEY_LENGTH = 500
SEPARATOR = "|"
KEY_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "romanized_name",
    "email",
)


# -- kana → Hepburn romaji --------------------------------------------------------------------

_DIGRAPHS = {
    "きゃ": "kya", "きゅ": "kyu", "きょ": "kyo", "しゃ": "sha", "しゅ": "shu", "しょ": "sho",
    "ちゃ": "cha", "ちゅ": "chu", "ちょ": "cho", "にゃ": "nya", "にゅ": "nyu", "にょ": "nyo",
    "ひゃ": "hya", "ひゅ": "hyu", "ひょ": "hyo", "みゃ": "mya", "みゅ": "myu", "みょ": "myo",
    "りゃ": "rya", "りゅ": "ryu", "りょ": "ryo", "ぎゃ": "gya", "ぎゅ": "gyu", "ぎょ": "gyo",
    "じゃ": "ja", "じゅ": "ju", "じょ": "jo", "ぢゃ": "ja", "ぢゅ": "ju", "ぢょ": "jo",
    "びゃ": "bya", "びゅ": "byu", "びょ": "byo", "ぴゃ": "pya", "ぴゅ": "pyu", "ぴょ": "pyo",
    "しぇ": "she", "ちぇ": "che", "じぇ": "je", "てぃ": "ti", "でぃ": "di", "ふぁ": "fa",
    "ふぃ": "fi", "ふぇ": "fe", "ふぉ": "fo", "うぃ": "wi", "うぇ": "we", "ゔぁ": "va",
}  # fmt: skip
_MONOGRAPHS = dict(
    zip(
        "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわゐゑをん"
        "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽぁぃぅぇぉゃゅょゎゔ",
        (
            "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no "
            "ha hi fu he ho ma mi mu me mo ya yu yo ra ri ru re ro wa i e o n "
            "ga gi gu ge go za ji zu ze zo da ji zu de do ba bi bu be bo pa pi pu pe po "
            "a i u e o ya yu yo wa vu"
        ).split(),
        strict=True,
    )
)


def romaji(kana: str | None) -> str:
    """Hiragana or katakana in Hepburn romaji (たかはし → takahashi, さとう → satou);
    other characters are kept."""
    text = fold(kana)
    out: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        ch = text[i]
        if ch == "っ":  # doubles the next consonant (っち → tch)
            nxt = romaji(text[i + 1 : i + 3])[:1]
            out.append("t" if nxt == "c" else nxt if nxt.isalpha() else "")
            i += 1
        elif ch == "ー":  # long vowel mark: repeat the vowel
            last = out[-1][-1:] if out else ""
            out.append(last if last in "aeiou" else "")
            i += 1
        elif pair in _DIGRAPHS:
            out.append(_DIGRAPHS[pair])
            i += 2
        else:
            out.append(_MONOGRAPHS.get(ch, ch))
            i += 1
    return "".join(out)


def short_vowels(text: str) -> str:
    """Romaji without long vowels as passports write them: satou → sato, yuuko → yuko."""
    return re.sub(r"ou|oo|uu", lambda m: m.group(0)[0], text)


def search_key(person) -> str:
    """The person's folded search key (see the module docstring)."""
    native = compact((person.family_name or "") + (person.given_name or ""))
    kana = compact((person.family_name_kana or "") + (person.given_name_kana or ""))
    reading = romaji(kana) if kana else ""
    roman_words = fold(person.romanized_name).split()
    parts = [
        native,
        kana,
        reading,
        short_vowels(reading),
        "".join(roman_words),
        "".join(reversed(roman_words)),
        (person.email or "").strip().lower(),
    ]
    seen: list[str] = []
    for part in parts:
        if part and part not in seen and not any(part in other for other in seen):
            seen.append(part)
    return SEPARATOR.join(seen)[:SEARCH_KEY_LENGTH]


def query_terms(query: str | None) -> list[str]:
    """The pieces of a search query, folded; every one must match (at most eight)."""
    return [t for t in fold(query).replace(SEPARATOR, " ").split() if t][:8]


def person_matches(query: str | None, key=None):
    """A condition on ``Person``: every folded piece of the query is in its search key
    (``key``: an expression of it to match instead, see ``portal.registration.people``)."""
    from portal.accounts.models import Person

    terms = query_terms(query)
    if not terms:
        return sa.true()
    key = Person.search_key if key is None else key
    return sa.and_(*(key.like(like_pattern(term), escape="\\") for term in terms))


def find_people(session: Session, query: str | None, limit: int = 20) -> list:
    """Live people whose name, reading (kana or romaji), romanised name or email contains
    every word typed, kana and full-/half-width alike (``Person.search_key``), by name."""
    from portal.accounts.models import Person

    if not (query or "").split():
        return []
    stmt = sa.select(Person).where(Person.anonymised_at.is_(None), person_matches(query))
    stmt = stmt.order_by(Person.family_name, Person.given_name, Person.id).limit(limit)
    return list(session.scalars(stmt).unique())


# -- keeping the key fresh ---------------------------------------------------------------------


def _before_flush(session: Session, flush_context, instances) -> None:
    from portal.accounts.models import Person

    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Person):
            continue
        if obj in session.dirty:
            state = sa.inspect(obj)
            if not any(state.attrs[name].history.has_changes() for name in KEY_FIELDS):
                continue
        key = search_key(obj)
        if obj.search_key != key:
            obj.search_key = key


def install() -> None:
    """Refresh ``Person.search_key`` in every session (idempotent)."""
    if not sa_event.contains(Session, "before_flush", _before_flush):
        sa_event.listen(Session, "before_flush", _before_flush)
