"""The card payment button's form (CSRF on)."""

from __future__ import annotations

from flask_wtf import FlaskForm


class PayForm(FlaskForm):
    """The "continue to card payment" button: nothing but the CSRF token."""
