"""The organiser's import form: a file to preview, then the previewed table to import."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField

MAX_TABLE_CHARS = 2_000_000


class UploadForm(FlaskForm):
    file = FileField(_l("Attendance table (CSV in UTF-8 or Shift_JIS, or Excel .xlsx)"))


class ConfirmForm(FlaskForm):
    """The table read from the previewed file, as CSV, sent back to import it."""

    table = HiddenField()
