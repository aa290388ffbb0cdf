"""Scores: mean, spread and count of the reviews per abstract, in one query for a list."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugins.abstracts.models import (
    Abstract,
    Review,
    ReviewAssignment,
)


@dataclass
class ScoreSummary:
    assigned: int = 0
    count: int = 0
    mean: float | None = None
    stdev: float | None = None
    low: float | None = None
    high: float | None = None
    by_criterion: dict = field(default_factory=dict)  # key -> mean

    @property
    def spread(self) -> float | None:
        return None if self.low is None else self.high - self.low


def _stats_subquery(event_id: int):
    """Review figures per abstract of one event (not grouped over every assignment ever)."""
    return (
        sa.select(
            ReviewAssignment.abstract_id.label("abstract_id"),
            sa.func.count(ReviewAssignment.id).label("assigned"),
            sa.func.count(Review.id).label("reviews"),
            sa.func.avg(Review.overall).label("mean"),
            (sa.func.max(Review.overall) - sa.func.min(Review.overall)).label("spread"),
        )
        .select_from(ReviewAssignment)
        .join(Abstract, Abstract.id == ReviewAssignment.abstract_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(Abstract.event_id == event_id)
        .group_by(ReviewAssignment.abstract_id)
        .subquery()
    )


def score_summaries(session: Session, abstracts: list[Abstract]) -> dict[int, ScoreSummary]:
    """Scores side by side for these abstracts, in one query."""
    ids = [a.id for a in abstracts]
    summaries = {i: ScoreSummary() for i in ids}
    if not ids:
        return summaries
    rows = session.execute(
        sa.select(ReviewAssignment.abstract_id, Review.overall, Review.scores)
        .select_from(ReviewAssignment)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.abstract_id.in_(ids))
    )
    collected: dict[int, list] = {i: [] for i in ids}
    for abstract_id, overall, scores in rows:
        summaries[abstract_id].assigned += 1
        if overall is not None:
            collected[abstract_id].append((overall, scores or {}))
    for abstract_id, reviews in collected.items():
        summary = summaries[abstract_id]
        summarise(summary, reviews)
    return summaries


def summarise(summary: ScoreSummary, reviews: list[tuple[float, dict]]) -> ScoreSummary:
    overall = [r[0] for r in reviews]
    summary.count = len(overall)
    if overall:
        import statistics  # on first use: a worker serving pages needs no statistics

        summary.mean = round(statistics.fmean(overall), 2)
        summary.stdev = round(statistics.pstdev(overall), 2)
        summary.low, summary.high = min(overall), max(overall)
        keys: dict[str, list[int]] = {}
        for _overall, scores in reviews:
            for key, value in scores.items():
                keys.setdefault(key, []).append(value)
        summary.by_criterion = {k: round(statistics.fmean(v), 2) for k, v in keys.items()}
    return summary


def summary_of(abstract: Abstract) -> ScoreSummary:
    """Scores of one abstract whose assignments and reviews are loaded."""
    summary = ScoreSummary(assigned=len(abstract.assignments))
    reviews = [(a.review.overall, a.review.scores or {}) for a in abstract.assignments if a.review]
    return summarise(summary, reviews)
