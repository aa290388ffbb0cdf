"""``state_change``: commit and flash on success; roll back and explain a refused change."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import get_flashed_messages
from flask_wtf import FlaskForm
from wtforms import StringField

from portal.accounts.models import Person
from portal.db import db
from portal.errors import UserError
from portal.transactions import state_change


class NameForm(FlaskForm):
    family_name = StringField()


def _people() -> list[str]:
    return list(db.session.scalars(sa.select(Person.family_name).order_by(Person.id)))


def test_success_commits_and_flashes(app):
    with app.test_request_context("/en/"):
        with state_change(success="Saved.") as change:
            db.session.add(Person(family_name="山田", preferred_language="ja"))
        assert (change.ok, change.status) == (True, 200)
        db.session.rollback()  # nothing left to undo: it was committed
        assert _people() == ["山田"]
        assert get_flashed_messages(with_categories=True) == [("success", "Saved.")]


def test_refused_change_rolls_back_and_marks_the_field(app):
    with app.test_request_context("/en/", method="POST"):
        form = NameForm(meta={"csrf": False})
        with state_change(form, success="Saved.") as change:
            db.session.add(Person(family_name="鈴木", preferred_language="ja"))
            raise UserError("Please enter a family name.", field="family_name")
        assert (change.ok, change.status) == (False, 400)
        assert form.family_name.errors == ["Please enter a family name."]
        assert get_flashed_messages() == []
        assert _people() == []


def test_refused_change_without_a_field_is_flashed(app):
    with app.test_request_context("/en/"):
        with state_change() as change:
            raise UserError("Not now.")
        assert change.error is not None
        assert get_flashed_messages(with_categories=True) == [("error", "Not now.")]


def test_other_errors_roll_back_and_propagate(app):
    with app.test_request_context("/en/"):
        with pytest.raises(RuntimeError), state_change():
            db.session.add(Person(family_name="佐藤", preferred_language="ja"))
            raise RuntimeError("bug")
        assert _people() == []
