"""Reading abstracts and assignments: one abstract, the lists of the submitter, the reviewer and
the office, the progress of the call and the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    AbstractState,
    Review,
    ReviewAssignment,
)
from plugins.abstracts.permissions import ORGANISERS_SEE, is_reviewer
from plugins.abstracts.scores import _stats_subquery
from plugins.abstracts.states import ACCEPTED, REVIEWER_VISIBLE, SUBJECT, UNDER_REVIEW
from portal import audit
from portal.events.models import Event


def get_abstract(session: Session, event: Event, abstract_id: int) -> Abstract | None:
    return session.scalars(
        sa.select(Abstract)
        .where(Abstract.id == abstract_id, Abstract.event_id == event.id)
        .options(
            selectinload(Abstract.authors).joinedload(AbstractAuthor.person),
            selectinload(Abstract.assignments).joinedload(ReviewAssignment.review),
            selectinload(Abstract.assignments).joinedload(ReviewAssignment.reviewer),
            joinedload(Abstract.submitter),
        )
    ).first()


def get_assignment(session: Session, event: Event, assignment_id: int) -> ReviewAssignment | None:
    return session.scalars(
        sa.select(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(ReviewAssignment.id == assignment_id, Abstract.event_id == event.id)
        .options(
            joinedload(ReviewAssignment.review),
            joinedload(ReviewAssignment.abstract)
            .selectinload(Abstract.authors)
            .joinedload(AbstractAuthor.person),
        )
    ).first()


def my_abstracts(event: Event, user) -> sa.Select:
    return (
        sa.select(Abstract)
        .where(Abstract.event_id == event.id, Abstract.submitter_id == user.person_id)
        .order_by(Abstract.created_at.desc(), Abstract.id.desc())
    )


def count_my_abstracts(session: Session, event: Event, user) -> int:
    """How many abstracts the person submitted to the event."""
    return session.scalar(
        sa.select(sa.func.count()).select_from(my_abstracts(event, user).subquery())
    )


def assigned_to(event: Event, user) -> sa.Select:
    """The reviewer's assignments in the event that they may still see."""
    return (
        sa.select(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(
            Abstract.event_id == event.id,
            ReviewAssignment.reviewer_id == user.person_id,
            Abstract.state.in_(REVIEWER_VISIBLE),
        )
        .options(joinedload(ReviewAssignment.abstract), joinedload(ReviewAssignment.review))
        .order_by(Abstract.id)
    )


def reviewer_may_see(assignment: ReviewAssignment, user) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and assignment.reviewer_id is not None
        and assignment.reviewer_id == user.person_id
        and assignment.abstract.state in REVIEWER_VISIBLE
        and is_reviewer(user, assignment.abstract.event)
    )


def has_accepted(session: Session, event: Event) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(Abstract.event_id == event.id, Abstract.state.in_(ACCEPTED))
            )
        )
    )


def has_assignments(session: Session, event: Event, user) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists()
                .where(ReviewAssignment.abstract_id == Abstract.id)
                .where(
                    Abstract.event_id == event.id,
                    ReviewAssignment.reviewer_id == user.person_id,
                    Abstract.state.in_(REVIEWER_VISIBLE),
                )
            )
        )
    )


@dataclass
class Progress:
    counts: dict = field(default_factory=dict)  # AbstractState -> int (drafts left out)
    total: int = 0
    assignments: int = 0
    reviews: int = 0
    without_reviewers: int = 0


def progress(session: Session, event: Event) -> Progress:
    result = Progress()
    for state, number in session.execute(
        sa.select(Abstract.state, sa.func.count())
        .where(Abstract.event_id == event.id, ORGANISERS_SEE)
        .group_by(Abstract.state)
    ):
        result.counts[AbstractState(state)] = number
    result.total = sum(result.counts.values())
    row = session.execute(
        sa.select(sa.func.count(ReviewAssignment.id), sa.func.count(Review.id))
        .select_from(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(Abstract.event_id == event.id, Abstract.state != AbstractState.withdrawn)
    ).one()
    result.assignments, result.reviews = row[0], row[1]
    result.without_reviewers = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Abstract)
            .where(
                Abstract.event_id == event.id,
                Abstract.state.in_(UNDER_REVIEW),
                ~sa.exists().where(ReviewAssignment.abstract_id == Abstract.id),
            )
        )
        or 0
    )
    return result


SORTS = ("id", "state", "mean", "spread", "count")


def organiser_list(event: Event, state: str | None = None, sort: str = "id") -> sa.Select:
    """Every abstract of the event ever submitted, sortable by its scores."""
    stats = _stats_subquery(event.id)
    stmt = (
        sa.select(Abstract)
        .outerjoin(stats, stats.c.abstract_id == Abstract.id)
        .where(Abstract.event_id == event.id, ORGANISERS_SEE)
        .options(
            selectinload(Abstract.authors),
            joinedload(Abstract.submitter),
        )
    )
    if state in AbstractState.__members__:
        stmt = stmt.where(Abstract.state == AbstractState(state))
    order = {
        "id": [Abstract.id],
        "state": [Abstract.state, Abstract.id],
        "mean": [stats.c.mean.desc().nulls_last(), Abstract.id],
        "spread": [stats.c.spread.desc().nulls_last(), Abstract.id],
        "count": [sa.func.coalesce(stats.c.reviews, 0).desc(), Abstract.id],
    }.get(sort, [Abstract.id])
    return stmt.order_by(*order)


def history(session: Session, abstract: Abstract) -> list:
    return audit.history(session, SUBJECT, abstract.id)


HISTORY_LABELS = {
    "draft_saved": _l("Draft saved"),
    "submitted": _l("Submitted"),
    "resubmitted": _l("Submitted again"),
    "changed": _l("Changed after submission"),
    "withdrawn": _l("Withdrawn"),
    "reopened": _l("Reopened for changes"),
    "reviewer_assigned": _l("Reviewer assigned"),
    "reviewer_unassigned": _l("Reviewer taken off"),
    "reviewer_conflict_found": _l("Conflict of interest found after an affiliation changed"),
    "reviewer_conflict_cleared": _l("Conflict of interest no longer found"),
    "review_saved": _l("Review saved"),
    "review_changed": _l("Review changed"),
    "accepted_oral": _l("Accepted (oral presentation)"),
    "accepted_poster": _l("Accepted (poster presentation)"),
    "rejected": _l("Not accepted"),
    "revision_requested": _l("Revision requested"),
}


SUBMITTER_ACTIONS = {
    "draft_saved", "submitted", "resubmitted", "changed", "withdrawn", "reopened",
    "accepted_oral", "accepted_poster", "rejected", "revision_requested",
}  # fmt: skip


def actor_names(session: Session, entries) -> dict[int, str]:
    """The name (or email) of the user behind each history entry's ``actor_id``."""
    from portal.accounts.models import User

    ids = {e.actor_id for e in entries if e.actor_id}
    if not ids:
        return {}
    users = session.scalars(sa.select(User).where(User.id.in_(ids))).unique()
    return {u.id: u.display_name or u.email for u in users}


def submitter_history(session: Session, abstract: Abstract) -> list:
    """What the submitter may see of the history: no reviewers, no reviews."""
    return [e for e in history(session, abstract) if e.action in SUBMITTER_ACTIONS]
