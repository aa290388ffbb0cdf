"""People the office looks up or adds while registering someone: the search condition over names
(either script, kana, romanised) and email, and a guest person without an account.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person, Sector
from portal.i18n import LANGUAGES
from portal.registration.errors import RegistrationError


def create_guest_person(
    session: Session,
    *,
    family_name: str = "",
    given_name: str = "",
    family_name_kana: str = "",
    given_name_kana: str = "",
    romanized_name: str = "",
    email: str | None = None,
    affiliation: str = "",
    sector: str | None = None,
    preferred_language: str = "ja",
    actor=None,
) -> Person:
    """A person without an account, added by an organiser (a speaker, a guest)."""
    if not (family_name or given_name or romanized_name):
        raise RegistrationError(_l("Please enter a name."), field="family_name")
    person = Person(
        family_name=family_name.strip(),
        given_name=given_name.strip(),
        family_name_kana=family_name_kana.strip(),
        given_name_kana=given_name_kana.strip(),
        romanized_name=romanized_name.strip(),
        email=(email or "").strip().lower() or None,
        affiliation=affiliation.strip(),
        sector=Sector(sector) if sector else None,
        preferred_language=preferred_language if preferred_language in LANGUAGES else "ja",
    )
    session.add(person)
    session.flush()
    audit.record(session, actor, "person", person.id, "created_by_organiser")
    return person


def person_search(q: str):
    """A condition: every word of ``q`` is in the person's folded search key (name in either
    script, kana, romaji, romanised name, email; kana and full/half width alike).

    For searches within one event's registrations (the lists, check-in, payments): the key
    is read through COALESCE (it is never NULL), which no index serves, so PostgreSQL starts
    from the event's registrations and checks their people instead of taking every person in
    the history who matches from the trigram index (28,000 for "sato" at 100x) and probing
    the event for each. Searches over all people use ``person_matches`` itself."""
    from portal.accounts.search import person_matches

    return person_matches(q, key=sa.func.coalesce(Person.search_key, ""))
