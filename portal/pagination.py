"""Pagination for lists: one count query and one page query, whatever the size."""

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
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def page_number(arg: str = "page") -> int:
    return int_arg(arg, 1, minimum=1)


def paginate(session: Session, stmt: sa.Select, page: int, per_page: int = 20) -> Page:
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items=items, page=page, per_page=per_page, total=total or 0)
