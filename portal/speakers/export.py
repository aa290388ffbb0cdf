"""The speaker directory as CSV for the office."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, contains_eager, selectinload

from portal.accounts.models import Person
from portal.csvexport import safe_cell
from portal.events.models import Talk
from portal.speakers.models import (
    SpeakerProfile,
)
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


def speakers_csv(session: Session) -> str:
    """Every (unmerged) speaker as CSV, UTF-8 with a byte-order mark for spreadsheets."""
    talk_counts = dict(
        session.execute(
            sa.select(Talk.speaker_id, sa.func.count())
            .where(Talk.speaker_id.is_not(None))
            .group_by(Talk.speaker_id)
        ).all()
    )
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([str(label) for _, label in CSV_COLUMNS])
    profiles = session.scalars(
        sa.select(SpeakerProfile)
        .join(SpeakerProfile.person)
        .where(SpeakerProfile.merged_into_id.is_(None), Person.anonymised_at.is_(None))
        .options(contains_eager(SpeakerProfile.person), selectinload(SpeakerProfile.affiliations))
        .order_by(SpeakerProfile.sort_kana, SpeakerProfile.person_id)
    ).unique()
    for profile in profiles:
        person = profile.person
        current = profile.current_affiliation
        row = {
            "id": person.id,
            **{name: getattr(person, name) for name in PERSON_FIELDS},
            "email": person.email or "",
            "links": " ".join(link["url"] for link in profile.links or []),
            "publish_consent": "1" if profile.publish_consent else "0",
            "talks": talk_counts.get(person.id, 0),
            "affiliation_ja": current.organisation.ja if current else person.affiliation,
            "affiliation_en": current.organisation.en if current else "",
        }
        for name in PROFILE_TEXT_FIELDS:
            row[f"{name}_ja"] = getattr(profile, name).ja
            row[f"{name}_en"] = getattr(profile, name).en
        writer.writerow([_cell(row[key]) for key, _ in CSV_COLUMNS])
    return out.getvalue()
