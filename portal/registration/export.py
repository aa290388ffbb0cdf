"""The person columns that the exports of registrations share (the registration list's CSV,
the exchange meeting's CSV): who registered and how they attend."""

from __future__ import annotations

from flask_babel import gettext as _

from portal.registration.labels import MODE_LABELS, SECTOR_LABELS
from portal.registration.models import Registration


def person_header() -> list[str]:
    """The headings of ``person_cells``, in the request's language."""
    return [
        _("Family name"),
        _("Given name"),
        _("Family name (kana)"),
        _("Given name (kana)"),
        _("Name in Latin letters"),
        _("Email"),
        _("Affiliation"),
        _("Affiliation type"),
        _("Attendance"),
    ]


def person_cells(registration: Registration) -> list:
    """The registration's person (names, email, affiliation and its type) and attendance mode."""
    p = registration.person
    return [
        p.family_name,
        p.given_name,
        p.family_name_kana,
        p.given_name_kana,
        p.romanized_name,
        p.email or "",
        p.affiliation,
        str(SECTOR_LABELS[p.sector]) if p.sector else "",
        str(MODE_LABELS[registration.attendance_mode]),
    ]
