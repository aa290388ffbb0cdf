"""Who may do what with abstracts: organisers, reviewers (only the abstracts assigned to them)
and the submitter (edit only while the call is open and the state allows it).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from plugins.abstracts.models import (
    Abstract,
    AbstractState,
)
from plugins.abstracts.settings import CallSettings
from plugins.abstracts.states import EDITABLE_STATES
from portal.accounts.models import Role
from portal.db import utcnow
from portal.events.models import Event, EventStatus


def is_organiser(user, event: Event) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_organiser_of(event.series))


def is_reviewer(user, event: Event) -> bool:
    return bool(
        getattr(user, "is_authenticated", False) and user.has_role(Role.reviewer, event.series_id)
    )


def organisers_see(abstract: Abstract) -> bool:
    """Organisers see what was submitted once (not drafts, not drafts thrown away)."""
    return abstract.submitted_at is not None


ORGANISERS_SEE = Abstract.submitted_at.is_not(None)


def is_submitter(user, abstract: Abstract) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and abstract.submitter_id is not None
        and abstract.submitter_id == user.person_id
    )


def edit_block(abstract: Abstract, settings: CallSettings, now: datetime | None = None):
    """Why the submitter may not change the abstract now (a translated message), or None."""
    if abstract.state not in EDITABLE_STATES:
        return _l("This abstract can no longer be changed.")
    if abstract.event.status == EventStatus.cancelled:
        return _l("The event has been cancelled.")
    if abstract.reopened or abstract.state == AbstractState.revision_requested:
        return None
    if settings.deadline_passed(now):
        return _l(
            "The deadline has passed, so the abstract can no longer be changed. "
            "Please contact the organisers if you need to change it."
        )
    return None


def can_edit(abstract: Abstract, settings: CallSettings, now: datetime | None = None) -> bool:
    return edit_block(abstract, settings, now) is None


def new_block(event: Event, settings: CallSettings, now: datetime | None = None):
    """Why a new abstract cannot be started now, or None."""
    now = now or utcnow()
    if event.status == EventStatus.cancelled:
        return _l("The event has been cancelled.")
    if settings.opens_at is not None and now < settings.opens_at:
        return _l("The call for abstracts is not open yet.")
    if settings.deadline_passed(now):
        return _l("The deadline for abstracts has passed.")
    return None
