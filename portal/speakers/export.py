"""The speaker directory as CSV for the office."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import people
from portal.accounts.models import Person
from portal.csvexport import safe_cell
from portal.events.models import Talk
from portal.localtime import office_today
from portal.speakers.models import Affiliation, SpeakerProfile
from portal.speakers.records import PERSON_FIELDS, PROFILE_TEXT_FIELDS

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


def speakers_csv_rows(session: Session, reader=None):
    """The speakers CSV, the header first, one row at a time: one statement on narrow columns
    (the current affiliation and the number of talks joined in), read 500 rows at a time, so
    neither memory nor the number of statements grows with the number of speakers.

    The directory is shared by both series, but an email address is only written for the
    people of the reader's own series (``portal.people``); administrators (and ``reader=None``,
    the command line) get every address."""
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
            sa.or_(other.ended_on.is_(None), other.ended_on >= office_today()),
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
            (people.email_column(reader, Person.email) if reader else Person.email).label("email"),
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
