"""The organiser's "mark as paid" form (CSRF on)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import InputRequired, Length


class TransferForm(FlaskForm):
    registration_id = HiddenField()
    amount = StringField(
        _l("Amount received"), [InputRequired(_l("Enter the amount that arrived."))]
    )
    note = StringField(
        _l("Note (date, sender name)"),
        [Length(max=1000, message=_l("Please keep it under 1000 characters."))],
    )
