"""Display labels of registration states, audit actions, attendance modes and sectors."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.accounts.models import Sector
from portal.events.models import AttendanceMode
from portal.registration.seats import S

STATE_LABELS = {
    S.pending_payment: _l("Awaiting payment"),
    S.confirmed: _l("Place confirmed"),
    S.waitlisted: _l("Waiting list"),
    S.cancelled: _l("Cancelled registration"),
    S.attended: _l("Attended"),
}


# What each history (audit) entry's action means.
ACTION_LABELS = {
    "registered": _l("Registered by the participant"),
    "reregistered": _l("Registered again"),
    "added_by_organiser": _l("Added by an organiser"),
    "promoted": _l("Moved up from the waiting list"),
    "confirmed": _l("Payment received"),
    "marked_paid": _l("Marked as paid"),
    "waitlisted": _l("Moved to the waiting list"),
    "cancelled": _l("Registration cancelled"),
    "cancelled_by_merge": _l("Cancelled when two records of the person were merged"),
    "expired": _l("Payment deadline passed"),
    "checked_in": _l("Checked in"),
    "check_in_undone": _l("Check-in undone"),
    "mode_switched": _l("Attendance mode changed"),
    "state_changed_by_organiser": _l("State changed by an organiser"),
    "repriced": _l("Price recalculated"),
    "ticket_revoked": _l("Ticket revoked and issued again"),
    "reception_checked_in": _l("Checked in at the exchange meeting"),
}


MODE_LABELS = {
    AttendanceMode.onsite: _l("Attending on site"),
    AttendanceMode.online: _l("Attending online"),
}


SECTOR_LABELS = {
    Sector.company: _l("Company"),
    Sector.university: _l("University"),
    Sector.government_other: _l("Government and other"),
}
