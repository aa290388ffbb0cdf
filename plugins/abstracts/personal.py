"""An author's or reviewer's personal data: what the data download shows and what erasure removes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, object_session

from plugins.abstracts import files
from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    AbstractState,
    ReviewAssignment,
)
from plugins.abstracts.permissions import organisers_see
from plugins.abstracts.states import EDITABLE_STATES, SUBJECT
from portal import audit
from portal.accounts.models import Person


def personal_data(person: Person) -> dict:
    """What this plugin keeps about the person: their abstracts, authorships and reviews."""
    session = object_session(person)
    if session is None:
        return {}
    submitted = session.scalars(
        sa.select(Abstract).where(Abstract.submitter_id == person.id).order_by(Abstract.id)
    ).all()
    authorships = session.scalars(
        sa.select(AbstractAuthor)
        .where(AbstractAuthor.person_id == person.id)
        .order_by(AbstractAuthor.abstract_id)
    ).all()
    reviews = session.scalars(
        sa.select(ReviewAssignment)
        .where(ReviewAssignment.reviewer_id == person.id)
        .options(joinedload(ReviewAssignment.review))
        .order_by(ReviewAssignment.id)
    ).all()
    return {
        "abstracts": [
            {
                "id": a.id,
                "event_id": a.event_id,
                "title": a.title.as_dict(),
                "body": a.body.as_dict(),
                "state": a.state.value,
                "topic": a.topic,
                "presentation_type": a.presentation_type,
                "pdf_filename": a.pdf_filename,
                "submitted_at": a.submitted_at.isoformat() if a.submitted_at else None,
            }
            for a in submitted
        ],
        "authorships": [
            {
                "abstract_id": a.abstract_id,
                "position": a.position,
                "name": a.name,
                "affiliation": a.affiliation,
                "email": a.email,
                "presenting": a.presenting,
            }
            for a in authorships
        ],
        "reviews": [
            {
                "abstract_id": r.abstract_id,
                "assigned_at": r.assigned_at.isoformat(),
                "scores": r.review.scores if r.review else None,
                "comment": r.review.comment if r.review else None,
            }
            for r in reviews
        ],
    }


def forget_person(person: Person) -> None:
    """The person deleted their account: drafts go, undecided abstracts are withdrawn, the
    names and emails typed as author are blanked, and reviews stay without the reviewer."""
    session = object_session(person)
    if session is None:
        return
    for abstract in session.scalars(
        sa.select(Abstract).where(Abstract.submitter_id == person.id)
    ).all():
        if not organisers_see(abstract):  # drafts, also withdrawn ones
            files.remove_after_commit(session, abstract.pdf_name)
            session.delete(abstract)
            continue
        if abstract.state in EDITABLE_STATES:
            old = abstract.state
            abstract.state = AbstractState.withdrawn
            audit.record(
                session,
                None,
                SUBJECT,
                abstract.id,
                "withdrawn",
                old=old.value,
                new="withdrawn",
                reason="account deleted",
            )
        if abstract.state == AbstractState.withdrawn and abstract.pdf_name:
            files.remove_after_commit(session, abstract.pdf_name)
            abstract.pdf_name = None
            abstract.pdf_filename = ""
            abstract.pdf_size = None
        abstract.submitter_id = None
    session.execute(
        sa.update(AbstractAuthor)
        .where(AbstractAuthor.person_id == person.id)
        .values(name="", email="", affiliation="")
    )
    session.execute(
        sa.update(ReviewAssignment)
        .where(ReviewAssignment.reviewer_id == person.id)
        .values(reviewer_id=None)
    )
    session.flush()
