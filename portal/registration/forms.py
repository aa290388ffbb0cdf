"""Registration forms. Choices are checked again by the services (tampered values are refused)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from portal.i18n import minor_units, to_minor
from portal.registration.types import RegistrationField

ANSWER_PREFIX = "x_"


def answer_field(f: RegistrationField):
    """A WTForms field for a plugin's registration field."""
    required = [DataRequired(message=_l("This field is required."))] if f.required else []
    if f.kind == "checkbox":
        return BooleanField(f.label, validators=required or [Optional()], description=f.help)
    if f.kind == "select":
        # Choices are set on the bound field (see _set_answer_choices).
        return SelectField(
            f.label,
            validate_choice=False,
            validators=required or [Optional()],
            description=f.help,
        )
    return StringField(
        f.label,
        validators=[*(required or [Optional()]), Length(max=1000)],
        description=f.help,
    )


def _set_answer_choices(form) -> None:
    for f in form.answer_fields:
        if f.kind == "select":
            form[ANSWER_PREFIX + f.name].choices = [("", _l("Please choose"))] + [
                (str(v), label) for v, label in f.choices
            ]


class _AnswersMixin:
    answer_fields: list[RegistrationField] = []

    def answers(self) -> dict:
        return {f.name: self[ANSWER_PREFIX + f.name].data for f in self.answer_fields}

    def answer_form_fields(self):
        return [self[ANSWER_PREFIX + f.name] for f in self.answer_fields]

    def field_for(self, name: str | None):
        """The form field a service error names (plugin answers carry the prefix)."""
        if not name:
            return None
        if name in self._fields:
            return self[name]
        return self._fields.get(ANSWER_PREFIX + name)

    def add_error(self, name: str | None, message) -> bool:
        target = self.field_for(name)
        if target is None:
            return False
        target.errors = [*list(target.errors or []), message]
        return True


class RegistrationForm(_AnswersMixin, FlaskForm):
    attendance_mode = RadioField(_l("How will you attend?"), choices=[], validate_choice=False)
    fee_category = RadioField(_l("Fee category"), choices=[], validate_choice=False)
    privacy = BooleanField(
        _l("I have read the privacy notice and agree."),
        validators=[DataRequired(message=_l("Please accept the privacy notice to register."))],
    )
    # Separate from the registration and never ticked for the person (docs/announcements.md).
    join_list = BooleanField(
        _l("Also send me the announcements of this series by email (optional)")
    )


_FORM_CLASSES: dict[tuple, type] = {}  # by the fields (built once: a class costs ~0.2 ms)


def _form_class(fields: list[RegistrationField]) -> type:
    """The form class with these extra fields, built once per set of fields (unless a field
    cannot be a dictionary key)."""
    key = tuple(fields)
    try:
        cached = _FORM_CLASSES.get(key)
    except TypeError:  # a field with a value that has no hash
        key, cached = None, None
    if cached is not None:
        return cached

    class Form(RegistrationForm):
        pass

    Form.answer_fields = list(fields)
    for f in fields:
        setattr(Form, ANSWER_PREFIX + f.name, answer_field(f))
    if key is not None:
        if len(_FORM_CLASSES) >= 64:
            _FORM_CLASSES.clear()
        _FORM_CLASSES[key] = Form
    return Form


def registration_form(fields: list[RegistrationField], formdata=None, **kwargs):
    """The registration form with the plugins' extra fields (``x_<name>``)."""
    Form = _form_class(fields)  # noqa: N806 - a class
    form = Form(formdata=formdata, **kwargs) if formdata is not None else Form(**kwargs)
    _set_answer_choices(form)
    return form


class ModeSwitchForm(FlaskForm):
    attendance_mode = RadioField(_l("Attendance"), choices=[], validate_choice=False)


class ConfirmForm(FlaskForm):
    """A button that changes something (cancel, check in, mark paid): CSRF only."""


class StateChangeForm(FlaskForm):
    state = SelectField(_l("New state"), choices=[], validate_choice=False)
    reason = TextAreaField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Please give a reason for this change.")),
            Length(max=1000),
        ],
    )
    force = BooleanField(_l("Give a place even if this attendance mode is full"))


SECTOR_CHOICES = [
    ("", _l("Not given")),
    ("company", _l("Company")),
    ("university", _l("University")),
    ("government_other", _l("Government and other")),
]


class OrganiserAddForm(_AnswersMixin, FlaskForm):
    person_id = HiddenField()
    family_name = StringField(_l("Family name"), validators=[Length(max=100)])
    given_name = StringField(_l("Given name"), validators=[Length(max=100)])
    family_name_kana = StringField(_l("Family name (kana)"), validators=[Length(max=100)])
    given_name_kana = StringField(_l("Given name (kana)"), validators=[Length(max=100)])
    romanized_name = StringField(_l("Name in Latin letters"), validators=[Length(max=200)])
    email = StringField(
        _l("Email"),
        validators=[
            Optional(),
            Email(message=_l("Please enter a valid email address.")),
            Length(max=254),
        ],
    )
    affiliation = StringField(_l("Affiliation"), validators=[Length(max=200)])
    sector = SelectField(_l("Affiliation type"), validate_choice=False)
    preferred_language = SelectField(_l("Language for emails"), validate_choice=False)
    attendance_mode = RadioField(_l("Attendance"), choices=[], validate_choice=False)
    fee_category = RadioField(_l("Fee category"), choices=[], validate_choice=False)
    reason = StringField(_l("Note for the history (optional)"), validators=[Length(max=500)])
    force = BooleanField(_l("Give a place even if this attendance mode is full"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sector.choices = SECTOR_CHOICES
        self.preferred_language.choices = [("ja", "日本語"), ("en", "English")]

    def validate_family_name(self, field):
        if self.person_id.data:
            return
        if not (field.data or self.given_name.data or self.romanized_name.data):
            raise ValidationError(_l("Please enter a name."))


def organiser_add_form(fields: list[RegistrationField], **kwargs):
    class Form(OrganiserAddForm):
        pass

    Form.answer_fields = list(fields)
    for f in fields:
        field = answer_field(f)
        # Organisers may leave plugin fields empty.
        field.kwargs["validators"] = [Optional()]
        setattr(Form, ANSWER_PREFIX + f.name, field)
    form = Form(**kwargs)
    _set_answer_choices(form)
    return form


class MoneyField(StringField):
    """An amount typed in major units (5000 for ¥5,000; 250.00 for $250.00)."""

    def __init__(self, *args, currency: str = "JPY", **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def minor(self) -> int | None:
        raw = (self.data or "").strip().replace(",", "")
        if not raw:
            return None
        return to_minor(Decimal(raw), self.currency)

    def pre_validate(self, form):
        raw = (self.data or "").strip().replace(",", "").lstrip("¥$")
        self.data = raw
        if not raw:
            return
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValidationError(_l("Please enter an amount, for example 5000.")) from None
        if not value.is_finite() or value < 0:
            raise ValidationError(_l("Please enter an amount of zero or more."))
        places = minor_units(self.currency)
        if -value.as_tuple().exponent > places:
            if places == 0:
                raise ValidationError(_l("This currency has no decimal places."))
            raise ValidationError(_l("Use at most %(places)s decimal places.", places=places))
        if value > Decimal("100000000"):
            raise ValidationError(_l("This amount is too large."))


class FeeCategoryForm(FlaskForm):
    code = StringField(
        _l("Code"),
        validators=[DataRequired(message=_l("Please enter a short code.")), Length(max=40)],
        description=_l("A short name used in exports, e.g. member or student."),
    )
    name_ja = StringField(_l("Name (Japanese)"), validators=[Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Length(max=200)])
    price = MoneyField(
        _l("Price"),
        validators=[InputRequired(message=_l("Please enter a price (0 for free)."))],
    )
    early_bird_price = MoneyField(_l("Early-bird price"), validators=[Optional()])
    early_bird_until = DateTimeLocalField(
        _l("Early-bird price until"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("In the event's time zone."),
    )
    requires_membership = BooleanField(_l("Members only"))
    position = IntegerField(
        _l("Order in the list"),
        default=0,
        validators=[Optional(), NumberRange(min=0, max=1000)],
    )

    def __init__(self, *args, currency: str = "JPY", **kwargs):
        super().__init__(*args, **kwargs)
        self.price.currency = currency
        self.early_bird_price.currency = currency

    def validate_name_ja(self, field):
        if not (field.data or "").strip() and not (self.name_en.data or "").strip():
            raise ValidationError(_l("Please enter a name in at least one language."))


class SettingsForm(FlaskForm):
    payment_days = IntegerField(
        _l("Days to pay after registering"),
        validators=[
            InputRequired(message=_l("Please enter a number of days.")),
            NumberRange(min=1, max=60, message=_l("Enter a number of days from 1 to 60.")),
        ],
    )
