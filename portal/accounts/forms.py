"""Forms of the accounts pages (Flask-WTF, so every one carries a CSRF token)."""

from __future__ import annotations

import re

from babel import Locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.models import Sector
from portal.accounts.services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PERSON_FIELDS
from portal.i18n import current_language

SECTOR_LABELS = {
    Sector.company: _l("Company"),
    Sector.university: _l("University"),
    Sector.government_other: _l("Government and other"),
}

LANGUAGE_LABELS = {"ja": "日本語", "en": "English"}

# Babel's territories that are not countries one lives in.
_NOT_COUNTRIES = {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}

_KANA = re.compile(r"^[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\u309d\u309e\u30fd\u30fe\s　]*$")


# Listed first, in this order, on pages of that language (most people come from there).
FIRST_COUNTRIES = {"ja": ("JP",), "en": ("US", "JP")}


def country_choices(lang: str | None = None) -> list[SelectChoice]:
    """ISO 3166 codes with names in the reader's language, sorted by name; 日本 first on
    Japanese pages (the United States and Japan first on English ones)."""
    lang = lang or current_language()
    names = Locale.parse(lang).territories
    countries = [
        SelectChoice(code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    first = FIRST_COUNTRIES.get(lang, ())
    return sorted(
        countries,
        key=lambda choice: (
            first.index(choice.value) if choice.value in first else len(first),
            choice.label,
        ),
    )


def country_name(code: str, lang: str | None = None) -> str:
    return Locale.parse(lang or current_language()).territories.get(code or "", code or "")


def _max(n: int):
    return Length(max=n, message=_l("Please keep this under %(max)d characters.", max=n))


def _required(message=None):
    return DataRequired(message=message or _l("Please fill in this field."))


def _kana(form, field):
    if field.data and not _KANA.match(field.data):
        raise ValidationError(_l("Please write the reading in hiragana or katakana."))


def _email_field(label=None):
    return EmailField(
        label or _l("Email"),
        validators=[
            _required(_l("Please enter your email address.")),
            Email(message=_l("Please enter a valid email address, like name@example.com.")),
            _max(254),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )


def _new_password_field(label=None):
    return PasswordField(
        label or _l("Password"),
        validators=[
            InputRequired(message=_l("Please choose a password.")),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=_l(
                    "The password must be at least %(min)d characters long.",
                    min=MIN_PASSWORD_LENGTH,
                ),
            ),
        ],
    )


def _confirm_field(other: str):
    return PasswordField(
        _l("Password (again)"),
        validators=[
            InputRequired(message=_l("Please enter the password a second time.")),
            EqualTo(other, message=_l("The two passwords are not the same.")),
        ],
    )


class PersonFields:
    """The person's own details, shared by the sign-up and profile forms."""

    family_name = StringField(
        _l("Family name"),
        validators=[_required(), _max(100)],
        render_kw={"autocomplete": "family-name"},
    )
    given_name = StringField(
        _l("Given name"),
        validators=[_required(), _max(100)],
        render_kw={"autocomplete": "given-name"},
    )
    family_name_kana = StringField(
        _l("Family name (kana)"), validators=[Optional(), _max(100), _kana]
    )
    given_name_kana = StringField(
        _l("Given name (kana)"), validators=[Optional(), _max(100), _kana]
    )
    romanized_name = StringField(
        _l("Name in Latin letters"),
        description=_l("As it should appear on English pages, e.g. Taro Yamada."),
        validators=[_required(), _max(200)],
    )
    affiliation = StringField(
        _l("Affiliation"),
        description=_l("Company, university or organisation."),
        validators=[_required(), _max(200)],
        render_kw={"autocomplete": "organization"},
    )
    sector = RadioField(
        _l("Sector"),
        choices=[SelectChoice(s.value, label) for s, label in SECTOR_LABELS.items()],
        validators=[InputRequired(message=_l("Please choose a sector."))],
    )
    country = SelectField(
        _l("Country or region"),
        validate_choice=False,  # validate_country says it in our words
        validators=[InputRequired(message=_l("Please choose a country or region."))],
    )
    preferred_language = SelectField(
        _l("Preferred language"),
        description=_l("Pages after you log in and our emails use this language."),
        choices=[SelectChoice(code, label) for code, label in LANGUAGE_LABELS.items()],
        validators=[InputRequired(message=_l("Please choose a language."))],
    )

    def _prepare_choices(self):
        self.country.choices = [SelectChoice("", _l("Choose…")), *country_choices()]

    def validate_country(self, field):
        if field.data not in {choice.value for choice in country_choices()}:
            raise ValidationError(_l("Please choose a country or region."))

    def person_data(self) -> dict:
        return {name: getattr(self, name).data for name in PERSON_FIELDS}


class SignupForm(PersonFields, FlaskForm):
    email = _email_field()
    password = _new_password_field()
    password_confirm = _confirm_field("password")
    # The lists of the series (docs/announcements.md): separate boxes, never ticked for them.
    announcement_lists = SelectMultipleField(
        _l("Announcements by email (optional)"),
        coerce=int,
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_choices()
        self._prepare_lists()
        if not self.is_submitted():
            lang = current_language()
            self.preferred_language.data = self.preferred_language.data or lang
            if not self.country.data and lang == "ja":
                self.country.data = "JP"

    def _prepare_lists(self) -> None:
        import sqlalchemy as sa

        from portal.db import db
        from portal.events.models import Series

        self.announcement_lists.choices = [
            SelectChoice(
                series.id,
                _l("Send me the announcements of %(series)s", series=series.name.get()),
            )
            for series in db.session.scalars(sa.select(Series).order_by(Series.id))
        ]


class ProfileForm(PersonFields, FlaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_choices()


class LoginForm(FlaskForm):
    email = _email_field()
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(message=_l("Please enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(_l("Keep me logged in on this device"))
    next = HiddenField()


class ForgotPasswordForm(FlaskForm):
    email = _email_field()


class ResetPasswordForm(FlaskForm):
    password = _new_password_field(_l("New password"))
    password_confirm = _confirm_field("password")


class ChangeEmailForm(FlaskForm):
    email = _email_field(_l("New email address"))
    password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(message=_l("Please enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(message=_l("Please enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    password = _new_password_field(_l("New password"))
    password_confirm = _confirm_field("password")


class DeleteAccountForm(FlaskForm):
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(message=_l("Please enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )


class EmptyForm(FlaskForm):
    """Only the CSRF token: for buttons that POST (resend the verification email)."""
