"""Forms of the call for abstracts: submission (with author rows), settings, review, decisions,
reviewer assignment and the email texts. Forms parse input; the rules live in services."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    FileField,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from plugins.abstracts import files, services
from plugins.abstracts.services import AbstractInput, AuthorInput, CallSettings
from portal.i18n import BilingualText
from portal.localtime import to_local, to_utc

REQUIRED = _l("Please fill in this field.")
LANGUAGE_LABELS = {"ja": _l("Japanese"), "en": _l("English")}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


choice = SelectChoice  # a select's option, (value, label); views use forms.choice


def _strip(value):
    return value.strip() if isinstance(value, str) else value


# -- submission ------------------------------------------------------------------------------


class AuthorForm(Form):
    name = StringField(_l("Name"), [Length(max=200)], filters=[_strip])
    affiliation = StringField(_l("Affiliation"), [Length(max=200)], filters=[_strip])
    email = StringField(
        _l("Email"),
        [Optional(), Email(_l("Please enter a valid email address.")), Length(max=254)],
        filters=[_strip],
    )


class AbstractForm(FlaskForm):
    title_ja = StringField(_l("Title (Japanese)"), filters=[_strip])
    title_en = StringField(_l("Title (English)"), filters=[_strip])
    body_ja = TextAreaField(_l("Abstract (Japanese)"), filters=[_strip])
    body_en = TextAreaField(_l("Abstract (English)"), filters=[_strip])
    language = SelectField(_l("Language of the presentation"))
    topic = SelectField(_l("Topic"))
    presentation_type = SelectField(_l("Presentation type"))
    authors = FieldList(FormField(AuthorForm), min_entries=1, max_entries=services.MAX_AUTHORS)
    presenting = RadioField(_l("Presenting author"), coerce=int, validate_choice=False)
    pdf = FileField(_l("PDF (optional, at most 10 MB)"))
    remove_pdf = BooleanField(_l("Remove the attached PDF"))

    upload: files.PdfUpload | None = None

    @classmethod
    def build(cls, settings: CallSettings, lang: str, **kwargs) -> AbstractForm:
        form = cls(**kwargs)
        form.language.choices = [choice(k, LANGUAGE_LABELS[k]) for k in ("ja", "en")]
        form.topic.choices = [choice("", _l("Choose a topic"))] + [
            choice(t.key, t.get(lang)) for t in settings.topics
        ]
        form.presentation_type.choices = [
            choice(t, services.TYPE_LABELS[t]) for t in settings.presentation_types
        ]
        form.presenting.choices = [choice(i, str(i + 1)) for i in range(len(form.authors))]
        if not settings.allow_pdf:
            del form.pdf
            del form.remove_pdf
        return form

    def author_rows(self) -> list[dict]:
        return [entry.form.data for entry in self.authors]

    def to_input(self) -> AbstractInput:
        presenting = self.presenting.data
        return AbstractInput(
            title=BilingualText(ja=self.title_ja.data or "", en=self.title_en.data or ""),
            body=BilingualText(ja=self.body_ja.data or "", en=self.body_en.data or ""),
            language=self.language.data or "en",
            topic=self.topic.data or "",
            presentation_type=self.presentation_type.data or "",
            authors=[
                AuthorInput(
                    name=row.get("name") or "",
                    affiliation=row.get("affiliation") or "",
                    email=row.get("email") or "",
                    presenting=presenting == index,
                )
                for index, row in enumerate(self.author_rows())
            ],
            pdf=self.upload,
            remove_pdf=bool(getattr(self, "remove_pdf", None) and self.remove_pdf.data),
        )

    def check(self, settings: CallSettings, submitting: bool) -> bool:
        """WTForms' checks, the PDF's content, then the call's rules, messages by field."""
        ok = self.validate()
        if "pdf" in self._fields:
            try:
                self.upload = files.read_upload(self.pdf.data)
            except files.PdfError as error:
                self.pdf.errors = [*self.pdf.errors, error.message]
                ok = False
        if not ok:
            return False
        found = services.problems(self.to_input(), settings, submitting)
        for name, messages in found.items():
            self.error_on(name).extend(messages)
        return not found

    def error_on(self, name: str) -> list:
        """The error list of the field that ``services.problems`` names."""
        if name.startswith("authors-"):
            _prefix, index, sub = name.split("-", 2)
            field = self.authors.entries[int(index)].form[sub]
        elif name in ("authors", "presenting"):
            field = self.presenting
        else:
            field = self[name]
        if not isinstance(field.errors, list):
            field.errors = list(field.errors)
        return field.errors

    def add_error(self, name: str, message) -> bool:
        """Where ``state_change`` puts a refused change that names a field."""
        self.error_on(name).append(message)
        return True


def abstract_form_data(abstract) -> dict:
    presenting = next((i for i, a in enumerate(abstract.authors) if a.presenting), None)
    return {
        "title_ja": abstract.title.ja,
        "title_en": abstract.title.en,
        "body_ja": abstract.body.ja,
        "body_en": abstract.body.en,
        "language": abstract.language,
        "topic": abstract.topic,
        "presentation_type": abstract.presentation_type,
        "authors": [
            {"name": a.name, "affiliation": a.affiliation, "email": a.email}
            for a in abstract.authors
        ]
        or [{}],
        "presenting": presenting,
    }


def new_form_data(user, event) -> dict:
    person = user.person
    return {
        "language": event.series.default_language,
        "authors": [
            {
                "name": person.display_name,
                "affiliation": person.affiliation or "",
                "email": user.email,
            }
        ],
        "presenting": 0,
    }


# -- settings --------------------------------------------------------------------------------


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _lines(choices) -> str:
    return "\n".join(
        f"{c.label.en} | {c.label.ja}" if c.label.ja else c.label.en or c.label.ja for c in choices
    )


def _parse_lines(text: str, current: list, prefix: str) -> list[dict]:
    """Lines "English | 日本語" as dicts; a label that already existed keeps its key."""
    known = {(c.label.en, c.label.ja): c.key for c in current}
    known_en = {c.label.en: c.key for c in current if c.label.en}
    result, seen = [], set()
    for index, line in enumerate((text or "").splitlines(), start=1):
        en, _sep, ja = line.partition("|")
        en, ja = en.strip(), ja.strip()
        if not (en or ja):
            continue
        key = (
            known.get((en, ja))
            or known_en.get(en)
            or services.slug_key(en or ja, f"{prefix}{index}")
        )
        if key in seen:
            continue
        seen.add(key)
        result.append({"key": key, "ja": ja, "en": en})
    return result


class SettingsForm(FlaskForm):
    opens_at = DateTimeLocalField(_l("Submissions open"), [Optional()], format=LOCAL_FORMAT)
    closes_at = DateTimeLocalField(_l("Deadline"), [Optional()], format=LOCAL_FORMAT)
    word_limit = IntegerField(
        _l("Word limit (0 for none)"),
        [
            InputRequired(REQUIRED),
            NumberRange(0, 100_000, _l("Enter a whole number of 0 or more.")),
        ],
    )
    topics = TextAreaField(_l("Topics, one per line: English | 日本語"))
    presentation_types = MultiCheckboxField(_l("Presentation types"))
    allow_pdf = BooleanField(_l("A PDF may be attached (at most 10 MB)"))
    instructions_ja = TextAreaField(_l("Instructions (Japanese)"), filters=[_strip])
    instructions_en = TextAreaField(_l("Instructions (English)"), filters=[_strip])
    criteria = TextAreaField(_l("Review criteria, one per line: English | 日本語"))
    scale_max = IntegerField(
        _l("Highest score (scores go from 1 to this)"),
        [InputRequired(REQUIRED), NumberRange(2, 10, _l("Enter a number from 2 to 10."))],
    )
    anonymised_reviews = BooleanField(_l("Hide the authors from reviewers"))
    reviewers_per_abstract = IntegerField(
        _l("Reviewers per abstract (for automatic assignment)"),
        [InputRequired(REQUIRED), NumberRange(1, 20, _l("Enter a number from 1 to 20."))],
    )

    @classmethod
    def build(cls, settings: CallSettings, zone: str = "UTC", **kwargs) -> SettingsForm:
        """The form for the call's settings; dates are shown in the event's ``zone``."""
        if "formdata" in kwargs and kwargs["formdata"] is None:
            kwargs["data"] = {
                "opens_at": to_local(settings.opens_at, zone),
                "closes_at": to_local(settings.closes_at, zone),
                "word_limit": settings.word_limit,
                "topics": _lines(settings.topics),
                "presentation_types": settings.presentation_types,
                "allow_pdf": settings.allow_pdf,
                "instructions_ja": settings.instructions.ja,
                "instructions_en": settings.instructions.en,
                "criteria": _lines(settings.criteria),
                "scale_max": settings.scale_max,
                "anonymised_reviews": settings.anonymised,
                "reviewers_per_abstract": settings.reviewers_per_abstract,
            }
        form = cls(**kwargs)
        form.presentation_types.choices = [
            choice(k, label) for k, label in services.TYPE_LABELS.items()
        ]
        form.settings = settings
        return form

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.opens_at.data and self.closes_at.data and self.closes_at.data <= self.opens_at.data:
            self.closes_at.errors = [
                *self.closes_at.errors,
                _l("The deadline must come after the opening."),
            ]
            ok = False
        if not self.presentation_types.data:
            self.presentation_types.errors = [
                *self.presentation_types.errors,
                _l("Choose at least one presentation type."),
            ]
            ok = False
        if not _parse_lines(self.criteria.data, [], "criterion-"):
            self.criteria.errors = [*self.criteria.errors, _l("Enter at least one criterion.")]
            ok = False
        return ok

    def values(self, zone: str = "UTC") -> dict:
        """The settings to store: the dates typed in the event's ``zone`` as UTC instants
        (ISO 8601 with offset), so changing the event's zone later does not move them."""
        return {
            "opens_at": _instant(self.opens_at.data, zone),
            "closes_at": _instant(self.closes_at.data, zone),
            "word_limit": self.word_limit.data,
            "topics": _parse_lines(self.topics.data, self.settings.topics, "topic-"),
            "presentation_types": [
                t for t in services.TYPE_LABELS if t in (self.presentation_types.data or [])
            ],
            "allow_pdf": bool(self.allow_pdf.data),
            "instructions_ja": self.instructions_ja.data or "",
            "instructions_en": self.instructions_en.data or "",
            "criteria": _parse_lines(self.criteria.data, self.settings.criteria, "criterion-"),
            "scale_max": self.scale_max.data,
            "anonymised_reviews": bool(self.anonymised_reviews.data),
            "reviewers_per_abstract": self.reviewers_per_abstract.data,
        }


def _instant(local: datetime | None, zone: str) -> str:
    value = to_utc(local, zone)
    return value.isoformat() if value is not None else ""


# -- reviewing and deciding ------------------------------------------------------------------


def review_form(settings: CallSettings, lang: str, review=None, formdata=None) -> FlaskForm:
    """One score per criterion (1 to the scale's top) and a comment."""

    class ReviewForm(FlaskForm):
        comment = TextAreaField(_l("Comment"), [Length(max=10_000)], filters=[_strip])

    scale = [choice(i, str(i)) for i in range(1, settings.scale_max + 1)]
    for criterion in settings.criteria:
        setattr(
            ReviewForm,
            f"score_{criterion.key}",
            RadioField(
                criterion.get(lang),
                [
                    InputRequired(
                        _l("Please give a score from 1 to %(max)d.", max=settings.scale_max)
                    )
                ],
                choices=scale,
                coerce=int,
            ),
        )
    if formdata is None:
        data = {"comment": review.comment if review else ""}
        for criterion in settings.criteria:
            data[f"score_{criterion.key}"] = (
                (review.scores or {}).get(criterion.key) if review else None
            )
        form = ReviewForm(formdata=None, data=data)
    else:
        form = ReviewForm(formdata=formdata)
    form.criteria = settings.criteria
    return form


def scores_of(form, settings: CallSettings) -> dict:
    return {c.key: form[f"score_{c.key}"].data for c in settings.criteria}


class AssignForm(FlaskForm):
    reviewer = SelectField(_l("Reviewer"), coerce=int)


class AutoAssignForm(FlaskForm):
    per_abstract = IntegerField(
        _l("Reviewers per abstract"),
        [InputRequired(REQUIRED), NumberRange(1, 20, _l("Enter a number from 1 to 20."))],
    )


DECISION_LABELS = {
    "accept_oral": _l("Accept as an oral presentation"),
    "accept_poster": _l("Accept as a poster presentation"),
    "reject": _l("Do not accept"),
    "request_revision": _l("Ask for a revision"),
}


class DecisionForm(FlaskForm):
    decision = RadioField(_l("Decision"), [InputRequired(_l("Please choose a decision."))])
    note = TextAreaField(
        _l("Message to the submitter (sent with the email, optional)"),
        [Length(max=5000)],
        filters=[_strip],
    )

    @classmethod
    def build(cls, **kwargs) -> DecisionForm:
        form = cls(**kwargs)
        form.decision.choices = [choice(k, v) for k, v in DECISION_LABELS.items()]
        return form


class EmailTextForm(FlaskForm):
    subject_ja = StringField(_l("Subject (Japanese)"), [Length(max=300)], filters=[_strip])
    subject_en = StringField(_l("Subject (English)"), [Length(max=300)], filters=[_strip])
    body_ja = TextAreaField(_l("Text (Japanese)"), [Length(max=20_000)], filters=[_strip])
    body_en = TextAreaField(_l("Text (English)"), [Length(max=20_000)], filters=[_strip])
