"""Forms of the payments pages (CSRF on every one)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length


class RefundForm(FlaskForm):
    amount = StringField(
        _l("Amount to refund"),
        [InputRequired(_l("Enter the amount to refund."))],
        description=_l("In the payment's currency, for example 5000 or 12.50."),
    )
    reason = TextAreaField(
        _l("Reason (kept in the history)"),
        [
            InputRequired(_l("Please give a reason for the refund.")),
            Length(max=1000, message=_l("Please keep it under 1000 characters.")),
        ],
    )


class ResendForm(FlaskForm):
    """Send a pending refund to the provider again (same idempotency key)."""


class ReceiptNameForm(FlaskForm):
    """The 宛名 the participant wants on their receipt, before it is issued."""

    kind = RadioField(
        _l("Addressed to"),
        choices=[("company", _l("A company (御中)")), ("person", _l("A person (様)"))],
        default="person",
        validators=[InputRequired(_l("Choose a company or a person."))],
    )
    name = StringField(
        _l("Name on the receipt"),
        [
            InputRequired(_l("Enter the name to print on the receipt.")),
            Length(max=200, message=_l("Please keep it under 200 characters.")),
        ],
    )
