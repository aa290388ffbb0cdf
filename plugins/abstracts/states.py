"""The states of an abstract, their labels, the moves a decision may make, and the errors.

States: draft → submitted → (revision_requested → submitted) → accepted_oral | accepted_poster
| rejected; draft, submitted and revision_requested may be withdrawn. Organisers may change a
decision (accept ↔ reject, oral ↔ poster); rejecting an accepted abstract removes its talk.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from plugins.abstracts.models import (
    AbstractState,
)
from portal.errors import UserError

PLUGIN = "abstracts"


SUBJECT = "abstract"


MAX_AUTHORS = 30


TITLE_MAX = 300


STATE_LABELS = {
    AbstractState.draft: _l("Draft"),
    AbstractState.submitted: _l("Submitted"),
    AbstractState.revision_requested: _l("Revision requested"),
    AbstractState.accepted_oral: _l("Accepted (oral presentation)"),
    AbstractState.accepted_poster: _l("Accepted (poster presentation)"),
    AbstractState.rejected: _l("Not accepted"),
    AbstractState.withdrawn: _l("Withdrawn"),
}


TYPE_LABELS = {
    "oral": _l("Oral presentation"),
    "poster": _l("Poster presentation"),
}


EDITABLE_STATES = {
    AbstractState.draft,
    AbstractState.submitted,
    AbstractState.revision_requested,
}


UNDER_REVIEW = {AbstractState.submitted, AbstractState.revision_requested}


ACCEPTED = {AbstractState.accepted_oral, AbstractState.accepted_poster}


# What a reviewer still sees of the abstracts assigned to them.
REVIEWER_VISIBLE = UNDER_REVIEW | ACCEPTED


# Which states each decision may follow.
DECISION_FROM = {
    AbstractState.accepted_oral: UNDER_REVIEW
    | {AbstractState.accepted_poster, AbstractState.rejected},
    AbstractState.accepted_poster: UNDER_REVIEW
    | {AbstractState.accepted_oral, AbstractState.rejected},
    AbstractState.rejected: UNDER_REVIEW | ACCEPTED,
    AbstractState.revision_requested: {AbstractState.submitted},
}


class AbstractError(UserError):
    """A change that is not allowed; ``message`` is translated, ``field`` names the input."""


class NotFound(LookupError):
    """The object does not exist for this person (the view answers 404)."""
