"""Webinar forms: the attendance report upload."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class ReportForm(FlaskForm):
    report = FileField(
        _l("Attendance report (CSV)"),
        validators=[FileRequired(message=_l("Please choose the attendance report (a CSV file)."))],
        description=_l(
            "The webinar service's attendance report, with the participants' email addresses. "
            "Importing the same file again changes nothing."
        ),
    )
