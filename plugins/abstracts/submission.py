"""Submitting: drafts, submission, withdrawal and reopening (one function per change; none commits)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from plugins.abstracts.authors import _apply
from plugins.abstracts.emails import _notify_submitter
from plugins.abstracts.models import (
    Abstract,
    AbstractState,
)
from plugins.abstracts.permissions import edit_block, is_submitter, new_block, organisers_see
from plugins.abstracts.settings import CallSettings, call_settings
from plugins.abstracts.states import EDITABLE_STATES, SUBJECT, UNDER_REVIEW, AbstractError, NotFound
from plugins.abstracts.validation import AbstractInput, _raise_first, problems
from portal import audit
from portal.db import utcnow
from portal.events.models import Event


def _record(session: Session, actor, abstract: Abstract, action: str, **data) -> None:
    audit.record(session, actor, SUBJECT, abstract.id, action, **data)


def _new_abstract(session: Session, event: Event, user, settings: CallSettings) -> Abstract:
    block = new_block(event, settings)
    if block is not None:
        raise AbstractError(block)
    abstract = Abstract(
        event_id=event.id,
        submitter_id=user.person_id,
        state=AbstractState.draft,
        language=event.series.default_language,
    )
    abstract.event = event
    abstract.submitter = user.person
    session.add(abstract)
    return abstract


def _check_owner(user, abstract: Abstract) -> None:
    if not is_submitter(user, abstract):
        raise NotFound(abstract.id)


def save_draft(
    session: Session, event: Event, user, data: AbstractInput, abstract: Abstract | None = None
) -> Abstract:
    """Create or change a draft (not yet submitted): only a title is required."""
    settings = call_settings(event)
    if abstract is not None:
        _check_owner(user, abstract)
        if abstract.state != AbstractState.draft:
            raise AbstractError(
                _l("This abstract has already been submitted; save your changes with “Submit”.")
            )
        block = edit_block(abstract, settings)
        if block is not None:
            raise AbstractError(block)
    _raise_first(problems(data, settings, submitting=False))
    if abstract is None:
        abstract = _new_abstract(session, event, user, settings)
    _apply(session, abstract, data, user, create=False)
    session.flush()
    _record(session, user, abstract, "draft_saved")
    return abstract


def submit(
    session: Session, event: Event, user, data: AbstractInput, abstract: Abstract | None = None
) -> Abstract:
    """Submit a new, draft or returned abstract, or save changes to a submitted one."""
    settings = call_settings(event)
    if abstract is not None:
        _check_owner(user, abstract)
        block = edit_block(abstract, settings)
        if block is not None:
            raise AbstractError(block)
    _raise_first(problems(data, settings, submitting=True))
    if abstract is None:
        abstract = _new_abstract(session, event, user, settings)
    old = abstract.state
    _apply(session, abstract, data, user, create=True)
    abstract.state = AbstractState.submitted
    if abstract.submitted_at is None:
        abstract.submitted_at = utcnow()
    session.flush()
    action = "submitted" if old == AbstractState.draft else "resubmitted"
    if old == AbstractState.submitted:
        action = "changed"
    _record(session, user, abstract, action, old=old.value, new=abstract.state.value)
    _notify_submitter(session, abstract, "submitted")
    return abstract


def withdraw(session: Session, abstract: Abstract, user) -> None:
    """The submitter withdraws a draft or an abstract that is not decided yet."""
    _check_owner(user, abstract)
    if abstract.state not in EDITABLE_STATES:
        raise AbstractError(
            _l("A decided abstract cannot be withdrawn here; please contact the organisers.")
        )
    old = abstract.state
    abstract.state = AbstractState.withdrawn
    abstract.reopened = False
    _record(session, user, abstract, "withdrawn", old=old.value, new=abstract.state.value)
    if old != AbstractState.draft:
        _notify_submitter(session, abstract, "withdrawn")


def reopen(session: Session, abstract: Abstract, actor) -> None:
    """An organiser lets the submitter change this one abstract after the deadline.

    A withdrawn abstract comes back as submitted, open for changes until the decision.
    """
    if not organisers_see(abstract):
        raise NotFound(abstract.id)
    if abstract.state not in UNDER_REVIEW | {AbstractState.withdrawn}:
        raise AbstractError(_l("A decided abstract cannot be reopened."))
    if abstract.reopened and abstract.state != AbstractState.withdrawn:
        raise AbstractError(_l("This abstract is already open for changes."))
    old = abstract.state
    if old == AbstractState.withdrawn:
        abstract.state = AbstractState.submitted
    abstract.reopened = True
    _record(session, actor, abstract, "reopened", old=old.value, new=abstract.state.value)
    _notify_submitter(session, abstract, "reopened")
