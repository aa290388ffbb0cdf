"""Forms of the list and the announcements (CSRF on all but the one-click leave)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    DateTimeLocalField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, Optional

from portal.announcements.models import Audience

LANGUAGE_CHOICES = [("ja", _l("Japanese")), ("en", _l("English"))]
AUDIENCE_LABELS = {
    Audience.list: _l("Everyone on the list who confirmed"),
    Audience.members: _l("People on the list who work for a member company"),
    Audience.participants: _l("People on the list who took part in the last year"),
    Audience.speakers: _l("Speakers of the last year and of the meeting"),
}


class JoinForm(FlaskForm):
    email = StringField(
        _l("Email address"),
        validators=[
            InputRequired(message=_l("Please enter your email address.")),
            Email(message=_l("Please enter a valid email address.")),
            Length(max=254),
        ],
    )
    name = StringField(_l("Name (optional)"), validators=[Optional(), Length(max=200)])
    language = RadioField(
        _l("Language of the announcements"),
        choices=LANGUAGE_CHOICES,
        default="ja",
        validators=[InputRequired(message=_l("Please choose a language."))],
    )


class LanguageForm(FlaskForm):
    language = RadioField(
        _l("Language of the announcements"),
        choices=LANGUAGE_CHOICES,
        validators=[InputRequired(message=_l("Please choose a language."))],
    )


class EmptyForm(FlaskForm):
    pass


class AnnouncementForm(FlaskForm):
    subject_ja = StringField(_l("Subject (Japanese)"), validators=[Optional(), Length(max=250)])
    subject_en = StringField(_l("Subject (English)"), validators=[Optional(), Length(max=250)])
    body_ja = TextAreaField(
        _l("Text (Japanese, Markdown)"), validators=[Optional(), Length(max=50000)]
    )
    body_en = TextAreaField(
        _l("Text (English, Markdown)"), validators=[Optional(), Length(max=50000)]
    )
    event_id = SelectField(
        _l("Meeting (fills the placeholders)"), coerce=str, validators=[Optional()]
    )
    audience = SelectField(
        _l("Audience"),
        choices=[(a.value, label) for a, label in AUDIENCE_LABELS.items()],
        validators=[InputRequired(message=_l("Please choose the audience."))],
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not (self.subject_ja.data or "").strip() and not (self.subject_en.data or "").strip():
            self.subject_ja.errors = [*self.subject_ja.errors, _l("Please write a subject.")]
            ok = False
        if not (self.body_ja.data or "").strip() and not (self.body_en.data or "").strip():
            self.body_ja.errors = [*self.body_ja.errors, _l("Please write the text.")]
            ok = False
        return ok


class ScheduleForm(FlaskForm):
    send_at = DateTimeLocalField(
        _l("Send at (leave empty to send now)"),
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
    )


class TestForm(FlaskForm):
    language = RadioField(
        _l("Language"),
        choices=LANGUAGE_CHOICES,
        default="ja",
        validators=[InputRequired(message=_l("Please choose a language."))],
    )


class ImportForm(FlaskForm):
    file = FileField(_l("List (CSV or Excel)"))
    confirm_by_email = RadioField(
        _l("The imported addresses"),
        choices=[
            ("ask", _l("Ask each address to confirm by email")),
            ("keep", _l("Keep them as imported, not yet confirmed")),
        ],
        default="ask",
        validators=[InputRequired(message=_l("Please choose what happens to the addresses."))],
    )
