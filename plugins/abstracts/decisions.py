"""Deciding: accept as oral or poster, reject, or ask for a revision; an accepted abstract gets a
talk in the programme, a rejected one loses it.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from plugins.abstracts.emails import _notify_submitter
from plugins.abstracts.models import (
    Abstract,
    AbstractState,
)
from plugins.abstracts.states import DECISION_FROM, STATE_LABELS, AbstractError
from plugins.abstracts.submission import _record
from portal import audit
from portal.accounts.models import Person
from portal.db import utcnow
from portal.events.models import Event, Talk
from portal.speakers import services as speakers


def _next_position(session: Session, event: Event) -> int:
    return (
        session.scalar(sa.select(sa.func.max(Talk.position)).where(Talk.event_id == event.id)) or 0
    ) + 1


def _ensure_talk(session: Session, abstract: Abstract, actor) -> Talk:
    """The abstract's talk in the event's programme, created after the existing talks."""
    talk = abstract.talk
    if talk is None:
        talk = Talk(
            event_id=abstract.event_id,
            title=abstract.title,
            abstract=abstract.body,
            language=abstract.language,
            position=_next_position(session, abstract.event),
        )
        session.add(talk)
        session.flush()
        abstract.talk = talk
        audit.record(session, actor, "talk", talk.id, "created", abstract_id=abstract.id)
    else:
        talk.title = abstract.title
        talk.abstract = abstract.body
        talk.language = abstract.language
    talk.presentation_type = "poster" if abstract.state == AbstractState.accepted_poster else "oral"
    presenting = abstract.presenting_author
    if presenting is not None and presenting.person_id:
        person_id = speakers.resolve(session, presenting.person_id) or presenting.person_id
        speakers.attach_speaker(session, talk, session.get(Person, person_id), actor)
    return talk


def _remove_talk(session: Session, abstract: Abstract, actor) -> None:
    talk = abstract.talk
    if talk is None:
        return
    abstract.talk = None
    session.delete(talk)
    session.flush()
    audit.record(session, actor, "talk", talk.id, "removed", abstract_id=abstract.id)


def _decide(session: Session, abstract: Abstract, actor, new: AbstractState, note: str) -> None:
    if abstract.state not in DECISION_FROM[new]:
        raise AbstractError(
            _l(
                "An abstract cannot move from “%(old)s” to “%(new)s”.",
                old=STATE_LABELS[abstract.state],
                new=STATE_LABELS[new],
            )
        )
    old = abstract.state
    abstract.state = new
    abstract.decision_note = (note or "").strip()
    abstract.decided_at = utcnow()
    abstract.reopened = new == AbstractState.revision_requested
    if new.is_accepted:
        _ensure_talk(session, abstract, actor)
    elif old.is_accepted:
        _remove_talk(session, abstract, actor)
    _record(
        session,
        actor,
        abstract,
        new.value,
        old=old.value,
        new=new.value,
        note=abstract.decision_note,
    )
    _notify_submitter(session, abstract, new.value, abstract.decision_note)


def accept_oral(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Accept as an oral presentation: the abstract becomes a talk of the event."""
    _decide(session, abstract, actor, AbstractState.accepted_oral, note)


def accept_poster(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Accept as a poster presentation: the abstract becomes a talk of the event."""
    _decide(session, abstract, actor, AbstractState.accepted_poster, note)


def reject(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Do not accept (an accepted abstract's talk is removed from the programme)."""
    _decide(session, abstract, actor, AbstractState.rejected, note)


def request_revision(session: Session, abstract: Abstract, actor, note: str = "") -> None:
    """Ask the submitter to change the abstract; they may edit it again, even after the deadline."""
    _decide(session, abstract, actor, AbstractState.revision_requested, note)


DECISIONS = {
    "accept_oral": accept_oral,
    "accept_poster": accept_poster,
    "reject": reject,
    "request_revision": request_revision,
}
