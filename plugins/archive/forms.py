"""Forms of the archive: a file upload and a video link, each with a title in both languages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField
from wtforms.validators import InputRequired, Length, ValidationError

from portal.i18n import BilingualText


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class _Titled(FlaskForm):
    title_ja = StringField(_l("Title (Japanese)"), filters=[_strip], validators=[Length(max=200)])
    title_en = StringField(_l("Title (English)"), filters=[_strip], validators=[Length(max=200)])

    def title(self) -> BilingualText:
        return BilingualText(ja=self.title_ja.data or "", en=self.title_en.data or "")


class FileForm(_Titled):
    file = FileField(_l("File (PDF, PowerPoint .pptx, PNG or JPEG)"))

    def validate_file(self, field):
        if not field.data or not getattr(field.data, "filename", ""):
            raise ValidationError(_l("Please choose a file."))


class LinkForm(_Titled):
    url = StringField(
        _l("Video address"),
        filters=[_strip],
        validators=[InputRequired(message=_l("Please enter the address of the video."))],
    )

    def validate_title_ja(self, field):
        if not field.data and not self.title_en.data:
            raise ValidationError(_l("Please give the link a title in Japanese or English."))


class ConfirmForm(FlaskForm):
    """A button that only needs the CSRF token."""
