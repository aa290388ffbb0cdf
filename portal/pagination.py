"""Pagination for lists: one count query and one page query, whatever the size.

``paginate`` counts every matching row (the page says "page 2 of 7"); ``paginate_next``
counts nothing: it reads one row more than the page shows to know whether there is a next
page ("page 2", Previous/Next). Use it for lists whose rows grow with the whole history
(archive, access log, speakers), where an exact count would cost more than the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.params import int_arg


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int | None  # None: not counted (``paginate_next``)
    more: bool = False  # without a total: whether a next page exists

    @property
    def pages(self) -> int:
        if self.total is None:
            return self.page + 1 if self.more else self.page
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.more if self.total is None else self.page < self.pages


def page_number(arg: str = "page") -> int:
    return int_arg(arg, 1, minimum=1)


def paginate(session: Session, stmt: sa.Select, page: int, per_page: int = 20) -> Page:
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items=items, page=page, per_page=per_page, total=total or 0)


def paginate_next(
    session: Session, stmt: sa.Select, page: int, per_page: int = 20, scalars: bool = True
) -> Page:
    """One page without counting: ``per_page + 1`` rows tell whether a next page exists.

    ``scalars=False`` keeps whole rows (a select of several columns)."""
    limited = stmt.limit(per_page + 1).offset((page - 1) * per_page)
    if scalars:
        rows = list(session.scalars(limited).unique())
    else:
        rows = list(session.execute(limited).all())
    return Page(
        items=rows[:per_page], page=page, per_page=per_page, total=None, more=len(rows) > per_page
    )
