"""Checking what a person chose: the attendance mode, the fee category, the answers to the
registration fields (unknown keys dropped, values typed).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal.events.models import AttendanceMode, Event
from portal.params import int_or_none
from portal.registration.errors import InvalidChoice, RegistrationError
from portal.registration.models import (
    FeeCategory,
)
from portal.registration.types import RegistrationField
from portal.text import truthy


def _resolve_mode(event: Event, value) -> AttendanceMode:
    if not value and len(event.attendance_modes) == 1:
        return event.attendance_modes[0]
    try:
        mode = AttendanceMode(str(value))
    except ValueError:
        mode = None
    if mode not in event.attendance_modes:
        raise InvalidChoice(
            _l("Please choose how you will attend this event."), field="attendance_mode"
        )
    return mode


def _resolve_category(
    session: Session, event: Event, value, *, active_only: bool = True
) -> FeeCategory | None:
    if isinstance(value, FeeCategory):
        category = value
    elif value in (None, ""):
        exists = session.scalar(
            sa.select(sa.func.count())
            .select_from(FeeCategory)
            .where(FeeCategory.event_id == event.id, FeeCategory.is_active.is_(True))
        )
        if exists:
            raise InvalidChoice(_l("Please choose a fee category."), field="fee_category")
        return None
    else:
        raw = str(value)
        category_id = int_or_none(raw)
        category = session.get(FeeCategory, category_id) if category_id is not None else None
    if (
        category is None
        or category.event_id != event.id
        or (active_only and not category.is_active)
    ):
        raise InvalidChoice(
            _l("Please choose one of the fee categories offered for this event."),
            field="fee_category",
        )
    return category


def clean_answers(
    fields: list[RegistrationField], raw: dict | None, enforce_required: bool = True
) -> dict:
    """Keep only the answers to the offered fields, typed; unknown keys are dropped."""
    raw = raw or {}
    out: dict = {}
    for f in fields:
        value = raw.get(f.name)
        if f.kind == "checkbox":
            value = truthy(value)
        elif f.kind == "select":
            value = "" if value is None else str(value)
            if value and value not in {str(v) for v, _label in f.choices}:
                raise InvalidChoice(field=f.name)
        else:
            value = "" if value is None else str(value).strip()[:1000]
        if enforce_required and f.required and not value:
            raise RegistrationError(_l("This field is required."), field=f.name)
        out[f.name] = value
    return out
