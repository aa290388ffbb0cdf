"""The book of abstracts: accepted abstracts grouped by topic or type, with their authors'
affiliations numbered.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, joinedload, selectinload

from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    AbstractState,
)
from plugins.abstracts.settings import call_settings
from plugins.abstracts.states import ACCEPTED
from portal.events.models import Event


def book_abstracts(session: Session, event: Event, by: str = "topic") -> list[tuple[str, list]]:
    """Accepted abstracts grouped by topic (the settings' order) or by session (oral, poster).

    Returns [(group label, [abstracts])]; within a group, by the talk's programme position.
    """
    settings = call_settings(event)
    abstracts = list(
        session.scalars(
            sa.select(Abstract)
            .where(Abstract.event_id == event.id, Abstract.state.in_(ACCEPTED))
            .options(selectinload(Abstract.authors), joinedload(Abstract.talk))
            .order_by(Abstract.id)
        ).unique()
    )

    def position(abstract: Abstract):
        return (abstract.talk.position if abstract.talk else 0, abstract.id)

    groups: list[tuple[str, list]] = []
    if by == "session":
        for state, label in (
            (AbstractState.accepted_oral, _("Oral presentations")),
            (AbstractState.accepted_poster, _("Poster presentations")),
        ):
            items = sorted((a for a in abstracts if a.state == state), key=position)
            if items:
                groups.append((label, items))
        return groups
    order = {t.key: i for i, t in enumerate(settings.topics)}
    keys = sorted({a.topic for a in abstracts}, key=lambda k: (k not in order, order.get(k, 0), k))
    for key in keys:
        items = sorted(
            (a for a in abstracts if a.topic == key),
            key=lambda a: (a.state != AbstractState.accepted_oral, *position(a)),
        )
        groups.append((settings.topic_label(key) if key else _("Other"), items))
    return groups


def author_affiliations(
    abstract: Abstract,
) -> tuple[list[tuple[AbstractAuthor, list[int]]], list[str]]:
    """Authors with the numbers of their affiliations, and the numbered affiliations."""
    numbered: list[str] = []
    result = []
    for author in abstract.authors:
        marks = []
        if author.affiliation:
            if author.affiliation not in numbered:
                numbered.append(author.affiliation)
            marks.append(numbered.index(author.affiliation) + 1)
        result.append((author, marks))
    return result, numbered
