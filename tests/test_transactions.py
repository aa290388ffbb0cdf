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


class Later(UserError):
    category = "info"


class AmountForm(FlaskForm):
    amount = StringField()
    note = StringField()


class PrefixedForm(FlaskForm):
    answer_diet = StringField()

    def add_error(self, name, message) -> bool:
        target = self._fields.get("answer_" + name)
        if target is None:
            return False
        target.errors = [*target.errors, message]
        return True


def test_the_error_class_names_the_flash_category(app):
    with app.test_request_context("/en/"):
        with state_change() as change:
            raise Later("You are already registered.")
        assert change.status == 400
        assert get_flashed_messages(with_categories=True) == [
            ("info", "You are already registered.")
        ]


def test_field_takes_the_refused_changes_that_name_no_field_of_the_form(app):
    with app.test_request_context("/en/", method="POST"):
        form = AmountForm(meta={"csrf": False})
        with state_change(form, field="amount") as change:
            raise UserError("Too much.")
        with state_change(form, field="amount"):
            raise UserError("Not a number.", field="elsewhere")
        with state_change(form, field="amount"):
            raise UserError("Too long.", field="note")
        assert change.status == 400
        assert form.amount.errors == ["Too much.", "Not a number."]
        assert form.note.errors == ["Too long."]
        assert get_flashed_messages() == []


def test_a_form_with_add_error_places_the_message_itself(app):
    with app.test_request_context("/en/", method="POST"):
        form = PrefixedForm(meta={"csrf": False})
        with state_change(form):
            raise UserError("Choose one.", field="diet")
        with state_change(form):
            raise UserError("Elsewhere.", field="unknown")
        assert form.answer_diet.errors == ["Choose one."]
        assert get_flashed_messages(with_categories=True) == [("error", "Elsewhere.")]


def test_without_flash_errors_the_message_is_kept_for_the_page(app):
    with app.test_request_context("/en/", method="POST"):
        form = AmountForm(meta={"csrf": False})
        with state_change(form, flash_errors=False) as change:
            raise UserError("The call is closed.")
        with state_change(form, flash_errors=False) as placed:
            raise UserError("Too much.", field="amount")
        assert (change.message, placed.message) == ("The call is closed.", None)
        assert form.amount.errors == ["Too much."]
        assert get_flashed_messages() == []
