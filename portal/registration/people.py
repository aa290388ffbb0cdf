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
from portal.text import LIKE_ESCAPE, like_pattern


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
    """A condition: every word of ``q`` is in the name (either script, kana, romanised) or email."""
    conditions = []
    for term in (q or "").split():
        pattern = like_pattern(term)
        conditions.append(
            sa.or_(
                *(
                    column.ilike(pattern, escape=LIKE_ESCAPE)
                    for column in (
                        Person.family_name,
                        Person.given_name,
                        Person.family_name_kana,
                        Person.given_name_kana,
                        Person.romanized_name,
                        Person.email,
                        Person.family_name + Person.given_name,
                        Person.family_name_kana + Person.given_name_kana,
                    )
                )
            )
        )
    return sa.and_(*conditions) if conditions else sa.true()
