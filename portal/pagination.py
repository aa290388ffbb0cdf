"""Pagination for lists: one count query and one page query, whatever the size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from flask import request
from sqlalchemy.orm import Session


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
    raw = request.args.get(arg, "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def paginate(session: Session, stmt: sa.Select, page: int, per_page: int = 20) -> Page:
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items=items, page=page, per_page=per_page, total=total or 0)
