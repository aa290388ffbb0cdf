"""Exchange meeting forms: buttons (CSRF only) with where to go back to."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField


class ChangeForm(FlaskForm):
    """Join / leave (the button's ``action``), or give free places to those waiting."""

    next = HiddenField()
