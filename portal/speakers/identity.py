"""Which live person a reference means: merged records lead to the survivor, anonymised people
are never found.

- ``resolve(session, person_id)``: the surviving record's id after merges.
- ``person_by_email(session, email)``: the one live person with this address: the account
  holder first (``users.email``, stored lower-case), else the oldest person row with it; merged
  records lead to their survivor, anonymised people are skipped. Every area that links a person
  by address (membership, abstracts' authors, imports) uses it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.accounts.models import Person, User
from portal.db import follow_merges
from portal.speakers.models import SpeakerProfile


def resolve(session: Session, person_id: int) -> int | None:
    """The surviving record's id for a (possibly merged) person id (an unknown id as it is)."""
    return follow_merges(
        session, SpeakerProfile.person_id, SpeakerProfile.merged_into_id, person_id
    )


def person_by_email(session: Session, email: str | None) -> Person | None:
    """The live person with this email address, or None."""
    email = (email or "").strip().lower()
    if not email:
        return None
    person = session.scalar(
        sa.select(Person)
        .join(User, User.person_id == Person.id)
        .where(User.email == email, Person.anonymised_at.is_(None))
    )
    if person is None:
        # people.email keeps the case it was typed in
        person = session.scalar(
            sa.select(Person)
            .where(sa.func.lower(Person.email) == email, Person.anonymised_at.is_(None))
            .order_by(Person.id)
            .limit(1)
        )
    if person is None:
        return None
    survivor_id = resolve(session, person.id)
    if survivor_id == person.id:
        return person
    survivor = session.get(Person, survivor_id)
    return survivor if survivor is not None and survivor.anonymised_at is None else None
