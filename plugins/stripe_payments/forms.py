"""Forms of the payment pages (CSRF on every one)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import InputRequired, Length


class PayForm(FlaskForm):
    """The "continue to card payment" button: nothing but the CSRF token."""


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
    """Send a pending refund to Stripe again (same idempotency key)."""
