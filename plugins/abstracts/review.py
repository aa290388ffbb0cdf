"""Reviewing: the candidates, conflicts of interest (same institution, co-author), assigning
reviewers by hand or automatically, re-checking assignments when an affiliation changes, and
saving a review.

Affiliations are compared as institutions (``portal.speakers.institutions``): a person's
``institution_id``, their current affiliation entry's, and every typed affiliation (the
person's, the entry's names, the author's as written on the abstract) matched to an
institution by its folded names and aliases; text that names no institution is compared
folded. So "Tohoku University" and 東北大学, aliases of one institution, conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from plugins.abstracts.emails import _link, _notify, _recipient
from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    Review,
    ReviewAssignment,
)
from plugins.abstracts.settings import call_settings
from plugins.abstracts.states import UNDER_REVIEW, AbstractError, NotFound
from plugins.abstracts.submission import _record
from portal import audit
from portal.accounts.models import Person, Role, User, UserRole
from portal.db import utcnow
from portal.events.models import Event
from portal.speakers import services as speakers
from portal.speakers.institutions import institution_index, institution_key


def reviewer_candidates(session: Session, event: Event) -> list[Person]:
    """People with the reviewer role for the event's series (or for every series)."""
    stmt = (
        sa.select(Person)
        .join(User, User.person_id == Person.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(
            UserRole.role == Role.reviewer,
            sa.or_(UserRole.series_id == event.series_id, UserRole.series_id.is_(None)),
            Person.anonymised_at.is_(None),
        )
        .options(joinedload(Person.user))
        .order_by(Person.id)
        .distinct()
    )
    return list(session.scalars(stmt).unique())


class Affiliations(dict):
    """Current affiliation entries by person id, and the institutions' folded names."""

    def __init__(self, entries: dict, institutions: dict[str, int]):
        super().__init__(entries)
        self.institutions = institutions

    def keys_of(self, *texts: str | None, institution_id: int | None = None) -> set[str]:
        """What to compare: "#<id>" for institutions, the folded text for the rest."""
        keys = {f"#{institution_id}"} if institution_id else set()
        for text in texts:
            folded = institution_key(text)
            if not folded:
                continue
            found = self.institutions.get(folded)
            keys.add(f"#{found}" if found else folded)
        return keys


def _affiliation_keys(person: Person, current: dict) -> set[str]:
    index = current if isinstance(current, Affiliations) else Affiliations(current, {})
    keys = index.keys_of(person.affiliation, institution_id=person.institution_id)
    entry = current.get(person.id)
    if entry is not None:
        keys |= index.keys_of(
            entry.organisation.ja, entry.organisation.en, institution_id=entry.institution_id
        )
    return keys


def conflict(reviewer: Person, abstract: Abstract, current: dict) -> str | None:
    """Why the person may not review the abstract ("author", "affiliation"), or None."""
    author_ids = {a.person_id for a in abstract.authors if a.person_id}
    if abstract.submitter_id:
        author_ids.add(abstract.submitter_id)
    if reviewer.id in author_ids:
        return "author"
    index = current if isinstance(current, Affiliations) else Affiliations(current, {})
    mine = _affiliation_keys(reviewer, index)
    theirs: set[str] = set()
    for author in abstract.authors:
        theirs |= index.keys_of(author.affiliation)
        if author.person is not None:
            theirs |= _affiliation_keys(author.person, index)
    if mine & theirs:
        return "affiliation"
    return None


CONFLICT_MESSAGES = {
    "author": _l("This person is an author of the abstract and cannot review it."),
    "affiliation": _l(
        "This person has the same affiliation as an author and cannot review the abstract."
    ),
}


def current_affiliations(session: Session, people) -> Affiliations:
    """Current affiliation entries of these people and the institutions' names (two queries)."""
    ids = {p.id for p in people if p is not None}
    entries = speakers.current_affiliations(session, ids) if ids else {}
    return Affiliations(entries, institution_index(session))


def recheck_conflicts(session: Session, person_ids, now=None) -> list[ReviewAssignment]:
    """Re-check the open review assignments of these people (as reviewers or authors) after
    their affiliation changed; newly found conflicts are flagged for the organisers (and
    audited), conflicts that went away are cleared. Returns the newly flagged assignments."""
    ids = set(person_ids)
    if not ids:
        return []
    as_author = sa.select(AbstractAuthor.abstract_id).where(AbstractAuthor.person_id.in_(ids))
    assignments = list(
        session.scalars(
            sa.select(ReviewAssignment)
            .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
            .where(
                Abstract.state.in_(UNDER_REVIEW),
                ReviewAssignment.reviewer_id.is_not(None),
                sa.or_(ReviewAssignment.reviewer_id.in_(ids), Abstract.id.in_(as_author)),
            )
            .options(
                joinedload(ReviewAssignment.reviewer),
                joinedload(ReviewAssignment.abstract)
                .selectinload(Abstract.authors)
                .joinedload(AbstractAuthor.person),
            )
            .order_by(ReviewAssignment.id)
        ).unique()
    )
    if not assignments:
        return []
    people = []
    for assignment in assignments:
        people.append(assignment.reviewer)
        people.extend(a.person for a in assignment.abstract.authors)
    current = current_affiliations(session, people)
    flagged = []
    for assignment in assignments:
        reason = conflict(assignment.reviewer, assignment.abstract, current)
        if reason == assignment.conflict:
            continue
        assignment.conflict = reason
        assignment.conflict_found_at = (now or utcnow()) if reason else None
        if reason:
            flagged.append(assignment)
        _record(
            session, None, assignment.abstract,
            "reviewer_conflict_found" if reason else "reviewer_conflict_cleared",
            reviewer_id=assignment.reviewer_id, assignment_id=assignment.id, reason=reason,
        )  # fmt: skip
    return flagged


def flagged_conflict_count(session: Session, event: Event) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(Abstract.event_id == event.id, ReviewAssignment.conflict.is_not(None))
    )


def flagged_conflicts(session: Session, event: Event) -> list[ReviewAssignment]:
    """The event's assignments with a conflict found after they were made (for organisers)."""
    return list(
        session.scalars(
            sa.select(ReviewAssignment)
            .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
            .where(Abstract.event_id == event.id, ReviewAssignment.conflict.is_not(None))
            .options(joinedload(ReviewAssignment.reviewer), joinedload(ReviewAssignment.abstract))
            .order_by(ReviewAssignment.abstract_id, ReviewAssignment.id)
        ).unique()
    )


def _assign(session: Session, abstract: Abstract, reviewer: Person, actor) -> ReviewAssignment:
    assignment = ReviewAssignment(
        abstract_id=abstract.id, reviewer_id=reviewer.id, assigned_by_id=getattr(actor, "id", None)
    )
    assignment.reviewer = reviewer
    abstract.assignments.append(assignment)
    session.flush()
    _record(session, actor, abstract, "reviewer_assigned", reviewer_id=reviewer.id)
    _address, lang = _recipient(reviewer)
    link = _link(
        "abstracts.review", lang_code=lang, slug=abstract.event.slug, assignment_id=assignment.id
    )
    _notify(session, abstract, "reviewer_assigned", reviewer, link)
    return assignment


def assign_reviewer(
    session: Session, abstract: Abstract, reviewer: Person, actor
) -> ReviewAssignment:
    """Assign one reviewer by hand (a reviewer of the series; never an author or colleague)."""
    if abstract.state not in UNDER_REVIEW:
        raise AbstractError(_l("Only submitted abstracts can be given reviewers."))
    candidates = {p.id for p in reviewer_candidates(session, abstract.event)}
    if reviewer.id not in candidates:
        raise AbstractError(_l("This person is not a reviewer of this series."), field="reviewer")
    if any(a.reviewer_id == reviewer.id for a in abstract.assignments):
        raise AbstractError(_l("This reviewer is already assigned."), field="reviewer")
    people = [reviewer, *(a.person for a in abstract.authors)]
    reason = conflict(reviewer, abstract, current_affiliations(session, people))
    if reason is not None:
        raise AbstractError(CONFLICT_MESSAGES[reason], field="reviewer")
    return _assign(session, abstract, reviewer, actor)


def unassign(session: Session, assignment: ReviewAssignment, actor) -> None:
    """Take a reviewer off an abstract (their review, if any, goes with the assignment)."""
    abstract = assignment.abstract
    if abstract.state.is_decided:
        raise AbstractError(_l("Reviewers cannot be changed after the decision."))
    had_review = assignment.review is not None
    reviewer_id = assignment.reviewer_id
    abstract.assignments.remove(assignment)
    session.flush()
    _record(
        session, actor, abstract, "reviewer_unassigned", reviewer_id=reviewer_id,
        review_removed=had_review,
    )  # fmt: skip


@dataclass
class AutoAssignResult:
    assigned: int = 0
    short: list[int] = field(default_factory=list)  # abstracts still below the target


def auto_assign(
    session: Session, event: Event, actor, per_abstract: int | None = None
) -> AutoAssignResult:
    """Fill every submitted abstract up to ``per_abstract`` reviewers, least-loaded first.

    Never an author, never someone with an author's affiliation; the load counts every
    assignment in the event; ties go to the lower id, so the result is repeatable.
    """
    settings = call_settings(event)
    target = per_abstract or settings.reviewers_per_abstract
    reviewers = reviewer_candidates(session, event)
    abstracts = list(
        session.scalars(
            sa.select(Abstract)
            .where(Abstract.event_id == event.id, Abstract.state.in_(UNDER_REVIEW))
            .options(
                selectinload(Abstract.authors).joinedload(AbstractAuthor.person),
                selectinload(Abstract.assignments),
            )
            .order_by(Abstract.id)
        ).unique()
    )
    load = dict.fromkeys((p.id for p in reviewers), 0)
    for row in session.execute(
        sa.select(ReviewAssignment.reviewer_id, sa.func.count())
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .where(Abstract.event_id == event.id)
        .group_by(ReviewAssignment.reviewer_id)
    ):
        if row[0] in load:
            load[row[0]] = row[1]
    people = list(reviewers)
    for abstract in abstracts:
        people.extend(a.person for a in abstract.authors)
    current = current_affiliations(session, people)
    result = AutoAssignResult()
    for abstract in abstracts:
        taken = {a.reviewer_id for a in abstract.assignments}
        need = target - len(abstract.assignments)
        if need <= 0:
            continue
        eligible = [
            p for p in reviewers if p.id not in taken and conflict(p, abstract, current) is None
        ]
        eligible.sort(key=lambda p: (load[p.id], p.id))
        for reviewer in eligible[:need]:
            _assign(session, abstract, reviewer, actor)
            load[reviewer.id] += 1
            result.assigned += 1
        if len(eligible) < need:
            result.short.append(abstract.id)
    audit.record(
        session, actor, "event", event.id, "abstracts.auto_assign",
        assigned=result.assigned, short=result.short, per_abstract=target,
    )  # fmt: skip
    return result


def save_review(
    session: Session, assignment: ReviewAssignment, user, scores: dict, comment: str
) -> Review:
    """The reviewer's scores (one per criterion, 1 to the scale's top) and comment."""
    abstract = assignment.abstract
    if assignment.reviewer_id is None or assignment.reviewer_id != user.person_id:
        raise NotFound(assignment.id)
    if abstract.state not in UNDER_REVIEW:
        raise AbstractError(_l("A decision has been made; the review can no longer be changed."))
    settings = call_settings(abstract.event)
    clean: dict[str, int] = {}
    for criterion in settings.criteria:
        value = scores.get(criterion.key)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not 1 <= number <= settings.scale_max:
            raise AbstractError(
                _l("Please give a score from 1 to %(max)d.", max=settings.scale_max),
                field=f"score_{criterion.key}",
            )
        clean[criterion.key] = number
    review = assignment.review
    created = review is None
    if review is None:
        review = Review(scores={}, comment="")
        assignment.review = review
    review.scores = clean
    review.overall = round(sum(clean.values()) / len(clean), 4)
    review.comment = (comment or "").strip()
    session.flush()
    _record(
        session, user, abstract, "review_saved" if created else "review_changed",
        assignment_id=assignment.id,
    )  # fmt: skip
    return review
