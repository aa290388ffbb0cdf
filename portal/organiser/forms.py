"""Organiser forms: series, events, talks, status, roles and plugin settings.

Forms parse and check input (including the checks that need the database, such as a slug
already in use) and hand clean values to the services; local date-times are read in the
event's own time zone and turned into aware UTC datetimes here.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from babel.numbers import is_currency
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    Email,
    InputRequired,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from portal.accounts.models import Role
from portal.db import db
from portal.events.models import Event, EventFormat, EventStatus, Series, SeriesKind
from portal.events.services import FORMAT_LABELS, STATUS_LABELS
from portal.i18n import BilingualText
from portal.localtime import to_local, to_utc, valid_zone

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

REQUIRED = _l("Please fill in this field.")
SLUG_FORMAT = _l("Use only lowercase letters, digits and hyphens, for example study-group-94.")
NOT_NEGATIVE = _l("Enter a whole number of 0 or more, or leave it empty for no limit.")
TOO_LARGE = _l("Enter a number no larger than %(max)s.")
TOO_LONG = _l("Use at most %(max)s characters.")
MAX_NUMBER = 1_000_000

SERIES_KIND_LABELS = {
    SeriesKind.study_group: _l("Study group (numbered meetings)"),
    SeriesKind.workshop: _l("Workshop (yearly editions)"),
}
LANGUAGE_LABELS = {"ja": _l("Japanese"), "en": _l("English")}
ROLE_LABELS = {
    Role.organiser: _l("Organiser"),
    Role.reviewer: _l("Reviewer"),
    Role.member: _l("Member"),
}


choice = SelectChoice  # one option of a select field, (value, label); views use forms.choice


def parsed(form, field):
    """Stop checking a field whose input could not be read (its own message says why)."""
    if field.process_errors:
        raise StopValidation()


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _check_slug(field, model, exclude_id: int | None) -> None:
    if not SLUG_RE.match(field.data or ""):
        raise ValidationError(SLUG_FORMAT)
    longest = model.__table__.c.slug.type.length
    if len(field.data) > longest:
        raise ValidationError(TOO_LONG % {"max": longest})
    stmt = sa.select(model.id).where(model.slug == field.data)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.session.scalar(stmt) is not None:
        if model is Event:
            raise ValidationError(_l("Another event already uses this slug."))
        raise ValidationError(_l("Another series already uses this slug."))


def _check_zone(field) -> None:
    if field.data and not valid_zone(field.data):
        raise ValidationError(
            _l("Unknown time zone. Use a name such as Asia/Tokyo or America/New_York.")
        )


def _bilingual(form, prefix: str) -> BilingualText:
    return BilingualText(
        ja=(form[f"{prefix}_ja"].data or "").strip(), en=(form[f"{prefix}_en"].data or "").strip()
    )


# -- series ----------------------------------------------------------------------------------


class SeriesForm(FlaskForm):
    slug = StringField(_l("Slug (used in addresses)"), [InputRequired(REQUIRED)], filters=[_lower])
    kind = SelectField(
        _l("Kind"), choices=[choice(k.value, label) for k, label in SERIES_KIND_LABELS.items()]
    )
    name_ja = StringField(_l("Name (Japanese)"), filters=[_strip])
    name_en = StringField(_l("Name (English)"), filters=[_strip])
    description_ja = TextAreaField(_l("Description (Japanese)"), filters=[_strip])
    description_en = TextAreaField(_l("Description (English)"), filters=[_strip])
    default_language = SelectField(
        _l("Default language"), choices=[choice(k, v) for k, v in LANGUAGE_LABELS.items()]
    )
    currency = StringField(
        _l("Currency (ISO code, e.g. JPY or USD)"), [InputRequired(REQUIRED)], filters=[_upper]
    )
    timezone = StringField(
        _l("Time zone (e.g. Asia/Tokyo)"), [InputRequired(REQUIRED)], filters=[_strip]
    )

    def __init__(self, *args, series: Series | None = None, **kwargs):
        if series is not None and "data" not in kwargs and "formdata" not in kwargs:
            kwargs["data"] = {
                "slug": series.slug,
                "kind": series.kind.value,
                "name_ja": series.name.ja,
                "name_en": series.name.en,
                "description_ja": series.description.ja if series.description else "",
                "description_en": series.description.en if series.description else "",
                "default_language": series.default_language,
                "currency": series.currency,
                "timezone": series.timezone,
            }
        super().__init__(*args, **kwargs)
        self._series_id = series.id if series is not None else None

    def validate_slug(self, field):
        _check_slug(field, Series, self._series_id)

    def validate_currency(self, field):
        if not re.fullmatch(r"[A-Z]{3}", field.data or "") or not is_currency(field.data):
            raise ValidationError(
                _l("Unknown currency. Use a three-letter ISO code such as JPY or USD.")
            )

    def validate_timezone(self, field):
        _check_zone(field)

    def validate_name_ja(self, field):
        if not field.data and not self.name_en.data:
            raise ValidationError(_l("Enter the name in Japanese or English (or both)."))

    def values(self) -> dict:
        return {
            "slug": self.slug.data,
            "kind": SeriesKind(self.kind.data),
            "name": _bilingual(self, "name"),
            "description": _bilingual(self, "description"),
            "default_language": self.default_language.data,
            "currency": self.currency.data,
            "timezone": self.timezone.data,
        }


# -- events ----------------------------------------------------------------------------------


def status_choices(statuses=None) -> list:
    return [choice(s.value, STATUS_LABELS[s]) for s in (statuses or list(EventStatus))]


class EventForm(FlaskForm):
    series_id = SelectField(_l("Series"), coerce=int)
    number = IntegerField(
        _l("Number (the Nth meeting or edition)"),
        [
            Optional(),
            parsed,
            NumberRange(min=1, message=_l("Enter a whole number of 1 or more.")),
            NumberRange(max=MAX_NUMBER, message=TOO_LARGE),
        ],
    )
    slug = StringField(_l("Slug (used in addresses)"), [InputRequired(REQUIRED)], filters=[_lower])
    title_ja = StringField(_l("Title (Japanese)"), filters=[_strip])
    title_en = StringField(_l("Title (English)"), filters=[_strip])
    description_ja = TextAreaField(_l("Description (Japanese)"), filters=[_strip])
    description_en = TextAreaField(_l("Description (English)"), filters=[_strip])
    starts_at = DateTimeLocalField(
        _l("Starts (local time of the event)"), [InputRequired(REQUIRED)], format=DATETIME_FORMATS
    )
    ends_at = DateTimeLocalField(
        _l("Ends (local time of the event)"), [InputRequired(REQUIRED)], format=DATETIME_FORMATS
    )
    timezone = StringField(
        _l("Time zone (empty: the series' time zone)"), [Optional()], filters=[_strip]
    )
    venue_ja = StringField(_l("Venue (Japanese)"), filters=[_strip])
    venue_en = StringField(_l("Venue (English)"), filters=[_strip])
    format = SelectField(
        _l("Format"), choices=[choice(f.value, FORMAT_LABELS[f.value]) for f in EventFormat]
    )
    capacity_onsite = IntegerField(
        _l("Seats on site (empty: no limit)"),
        [
            Optional(),
            parsed,
            NumberRange(min=0, message=NOT_NEGATIVE),
            NumberRange(max=MAX_NUMBER, message=TOO_LARGE),
        ],
    )
    capacity_online = IntegerField(
        _l("Places online (empty: no limit)"),
        [
            Optional(),
            parsed,
            NumberRange(min=0, message=NOT_NEGATIVE),
            NumberRange(max=MAX_NUMBER, message=TOO_LARGE),
        ],
    )
    status = SelectField(_l("Status"), choices=status_choices())
    reason = StringField(_l("Reason for a status change (optional)"), filters=[_strip])

    def __init__(self, *args, series: list[Series], event: Event | None = None, **kwargs):
        if event is not None and "data" not in kwargs and "formdata" not in kwargs:
            zone = event.timezone
            kwargs["data"] = {
                "series_id": event.series_id,
                "number": event.number,
                "slug": event.slug,
                "title_ja": event.title.ja,
                "title_en": event.title.en,
                "description_ja": event.description.ja if event.description else "",
                "description_en": event.description.en if event.description else "",
                "starts_at": to_local(event.starts_at, zone),
                "ends_at": to_local(event.ends_at, zone),
                "timezone": zone,
                "venue_ja": event.venue.ja if event.venue else "",
                "venue_en": event.venue.en if event.venue else "",
                "format": event.format.value,
                "capacity_onsite": event.capacity_onsite,
                "capacity_online": event.capacity_online,
                "status": event.status.value,
            }
        super().__init__(*args, **kwargs)
        self._series = {s.id: s for s in series}
        self._event_id = event.id if event is not None else None
        self.series_id.choices = [
            choice(s.id, s.name.get(None, s.default_language)) for s in series
        ]

    @property
    def chosen_series(self) -> Series | None:
        return self._series.get(self.series_id.data)

    @property
    def zone(self) -> str:
        """The event's time zone: the one entered, else the series'."""
        if self.timezone.data:
            return self.timezone.data
        series = self.chosen_series
        return series.timezone if series is not None else "UTC"

    def validate_slug(self, field):
        _check_slug(field, Event, self._event_id)

    def validate_timezone(self, field):
        _check_zone(field)

    def validate_title_ja(self, field):
        if not field.data and not self.title_en.data:
            raise ValidationError(_l("Enter the title in Japanese or English (or both)."))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        start, end = self.starts_at.data, self.ends_at.data
        if start and end and end <= start:
            self.ends_at.errors.append(_l("The end must be after the start."))
            ok = False
        if self.number.data and not self.number.errors and self.series_id.data:
            stmt = sa.select(Event.id).where(
                Event.series_id == self.series_id.data, Event.number == self.number.data
            )
            if self._event_id is not None:
                stmt = stmt.where(Event.id != self._event_id)
            if db.session.scalar(stmt) is not None:
                self.number.errors.append(_l("This series already has an event with this number."))
                ok = False
        return ok

    def values(self) -> dict:
        zone = self.zone
        return {
            "series_id": self.series_id.data,
            "number": self.number.data,
            "slug": self.slug.data,
            "title": _bilingual(self, "title"),
            "description": _bilingual(self, "description"),
            "starts_at": to_utc(self.starts_at.data, zone),
            "ends_at": to_utc(self.ends_at.data, zone),
            "timezone": zone,
            "venue": _bilingual(self, "venue"),
            "format": EventFormat(self.format.data),
            "capacity_onsite": self.capacity_onsite.data,
            "capacity_online": self.capacity_online.data,
        }


class StatusForm(FlaskForm):
    status = SelectField(_l("New status"), choices=status_choices())
    reason = StringField(_l("Reason (optional)"), filters=[_strip])


# -- talks -----------------------------------------------------------------------------------


class TalkForm(FlaskForm):
    title_ja = StringField(_l("Title (Japanese)"), filters=[_strip])
    title_en = StringField(_l("Title (English)"), filters=[_strip])
    speaker_query = StringField(_l("Find a speaker (name, reading or email)"), filters=[_strip])
    speaker_id = SelectField(_l("Speaker"), coerce=int, validate_choice=False)
    language = SelectField(
        _l("Language of the talk"), choices=[choice(k, v) for k, v in LANGUAGE_LABELS.items()]
    )
    position = IntegerField(
        _l("Position in the programme"),
        [
            InputRequired(REQUIRED),
            parsed,
            NumberRange(min=0, message=_l("Enter a whole number of 0 or more.")),
            NumberRange(max=MAX_NUMBER, message=TOO_LARGE),
        ],
        default=1,
    )
    starts_at = DateTimeLocalField(
        _l("Starts (local time of the event, optional)"), [Optional()], format=DATETIME_FORMATS
    )

    def validate_title_ja(self, field):
        if not field.data and not self.title_en.data:
            raise ValidationError(_l("Enter the title in Japanese or English (or both)."))

    def values(self, zone: str) -> dict:
        return {
            "title": _bilingual(self, "title"),
            "speaker_id": self.speaker_id.data or None,
            "language": self.language.data,
            "position": self.position.data,
            "starts_at": to_utc(self.starts_at.data, zone),
        }


# -- roles -----------------------------------------------------------------------------------


class RoleGrantForm(FlaskForm):
    role = SelectField(
        _l("Role"), choices=[choice(r.value, label) for r, label in ROLE_LABELS.items()]
    )
    series_id = SelectField(_l("Series"), coerce=int)

    def __init__(self, *args, series: list[Series], **kwargs):
        super().__init__(*args, **kwargs)
        self.series_id.choices = [choice(0, _l("All series"))] + [
            choice(s.id, s.name.get(None, s.default_language)) for s in series
        ]

    def validate_series_id(self, field):
        if self.role.data in (Role.organiser.value, Role.reviewer.value) and not field.data:
            raise ValidationError(_l("Organisers and reviewers belong to one series: choose it."))


class EmptyForm(FlaskForm):
    """Only the CSRF token (buttons that change something)."""


class ReviewerForm(FlaskForm):
    email = StringField(
        _l("Email of the reviewer's account"),
        [InputRequired(REQUIRED), Email(message=_l("Enter a valid email address."))],
        filters=[_lower],
    )


class UserSearchForm(FlaskForm):
    class Meta:
        csrf = False

    email = StringField(
        _l("Email"),
        [InputRequired(REQUIRED), Email(message=_l("Enter a valid email address."))],
        filters=[_lower],
    )


# -- plugin settings -------------------------------------------------------------------------


def plugin_settings_form(module, current: dict, formdata=None) -> FlaskForm | None:
    """A form with one input per declared setting, typed by the default's type (bool:
    checkbox, int: number, anything else: text). None when the plugin declares no settings."""
    if getattr(module, "settings_endpoint", None):
        return None  # the plugin has a settings page of its own
    defaults = {
        key: value
        for key, value in (getattr(module, "default_settings", {}) or {}).items()
        if isinstance(value, bool | int | str)
    }
    if not defaults:
        return None
    labels = dict(getattr(module, "settings_labels", {}) or {})

    class PluginSettingsForm(FlaskForm):
        pass

    for key, default in defaults.items():
        label = labels.get(key, key.replace("_", " ").capitalize())
        if isinstance(default, bool):
            field = BooleanField(label)
        elif isinstance(default, int):
            field = IntegerField(label, [InputRequired(REQUIRED), parsed])
        else:
            field = StringField(label, filters=[_strip])
        setattr(PluginSettingsForm, key, field)

    data = {key: current.get(key, default) for key, default in defaults.items()}
    prefix = f"plugin-{module.name}"
    if formdata is None:
        return PluginSettingsForm(formdata=None, data=data, prefix=prefix)
    return PluginSettingsForm(formdata=formdata, prefix=prefix)


def plugin_settings_values(module, form) -> dict:
    return {
        key: form[key].data
        for key in (getattr(module, "default_settings", {}) or {})
        if key in form
    }
