"""Forms for speaker records: every text in Japanese and English."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.i18n import BilingualText
from portal.speakers.records import PERSON_FIELDS, PROFILE_TEXT_FIELDS

choice = SelectChoice  # a select's option, (value, label); views use forms.choice


LANGUAGE_CHOICES = [("ja", "日本語"), ("en", "English")]


def language_choices():
    return [choice(value, label) for value, label in LANGUAGE_CHOICES]


KANA = re.compile(r"^[\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f\s・ー]*$")


def kana_only(form, field):
    if field.data and not KANA.match(field.data):
        raise ValidationError(_l("Please write the reading in kana."))


def parse_links(text: str | None) -> list[dict]:
    """One link per line: "https://…" or "Label | https://…"."""
    links = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        label, _, url = line.rpartition("|")
        links.append({"label": label.strip(), "url": url.strip()})
    return links


def links_text(links) -> str:
    return "\n".join(
        f"{link['label']} | {link['url']}" if link.get("label") else link["url"]
        for link in links or []
    )


def valid_links(form, field):
    for number, link in enumerate(parse_links(field.data), start=1):
        parts = urlsplit(link["url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(
                _l(
                    "Line %(number)s is not a web address starting with https:// or http://.",
                    number=number,
                )
            )
    if len(parse_links(field.data)) > 20:
        raise ValidationError(_l("Please give at most 20 links."))


class ProfileForm(FlaskForm):
    """What a speaker may change about themself (and an organiser too)."""

    family_name = StringField(_l("Family name"), [Optional(), Length(max=100)])
    given_name = StringField(_l("Given name"), [Optional(), Length(max=100)])
    family_name_kana = StringField(
        _l("Family name (kana)"), [Optional(), Length(max=100), kana_only]
    )
    given_name_kana = StringField(_l("Given name (kana)"), [Optional(), Length(max=100), kana_only])
    romanized_name = StringField(_l("Name in Latin letters"), [Optional(), Length(max=200)])
    country = SelectField(_l("Country or region"), [Optional()], validate_choice=False, choices=[])
    title_ja = StringField(_l("Honorific title (Japanese)"), [Optional(), Length(max=100)])
    title_en = StringField(_l("Honorific title (English)"), [Optional(), Length(max=100)])
    position_ja = StringField(_l("Position (Japanese)"), [Optional(), Length(max=200)])
    position_en = StringField(_l("Position (English)"), [Optional(), Length(max=200)])
    biography_ja = TextAreaField(_l("Biography (Japanese)"), [Optional(), Length(max=10000)])
    biography_en = TextAreaField(_l("Biography (English)"), [Optional(), Length(max=10000)])
    self_introduction_ja = TextAreaField(
        _l("Self-introduction (Japanese)"), [Optional(), Length(max=20000)]
    )
    self_introduction_en = TextAreaField(
        _l("Self-introduction (English)"), [Optional(), Length(max=20000)]
    )
    links = TextAreaField(
        _l("Links (one per line: an address, or a label | an address)"),
        [Optional(), Length(max=10000), valid_links],
    )
    photo = FileField(_l("Photo (JPEG, PNG or WebP, at most 5 MB)"))
    publish_consent = BooleanField(_l("Consent to publish the profile"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from portal.accounts.forms import country_choices

        self.country.choices = [choice("", _l("Not given")), *country_choices()]

    def validate_country(self, field):
        from portal.accounts.forms import country_choices

        field.data = (field.data or "").upper()
        if field.data and field.data not in {c.value for c in country_choices()}:
            raise ValidationError(_l("Please choose a country or region."))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        names = (self.family_name.data, self.given_name.data, self.romanized_name.data)
        if not any((n or "").strip() for n in names):
            self.family_name.errors = [
                *self.family_name.errors,
                _l("Please enter the name in Japanese script or in Latin letters."),
            ]
            ok = False
        return ok

    def fill(self, profile) -> None:
        """Show a stored record (GET)."""
        person = profile.person
        for name in PERSON_FIELDS:
            getattr(self, name).data = getattr(person, name)
        for name in PROFILE_TEXT_FIELDS:
            value = getattr(profile, name)
            getattr(self, f"{name}_ja").data = value.ja
            getattr(self, f"{name}_en").data = value.en
        self.links.data = links_text(profile.links)
        self.publish_consent.data = profile.publish_consent
        if getattr(self, "email", None) is not None:
            self.email.data = person.email or ""
            self.preferred_language.data = person.preferred_language

    def values(self) -> dict:
        """The typed values, as the speaker services take them."""
        values = {name: getattr(self, name).data or "" for name in PERSON_FIELDS}
        for name in PROFILE_TEXT_FIELDS:
            values[name] = BilingualText(
                ja=getattr(self, f"{name}_ja").data or "", en=getattr(self, f"{name}_en").data or ""
            )
        values["links"] = parse_links(self.links.data)
        values["publish_consent"] = bool(self.publish_consent.data)
        if getattr(self, "email", None) is not None:
            values["email"] = self.email.data or ""
            values["preferred_language"] = self.preferred_language.data
        return values


class SpeakerForm(ProfileForm):
    """An organiser's form: also the email address and the language for emails."""

    email = EmailField(_l("Email"), [Optional(), Email(), Length(max=254)])
    preferred_language = SelectField(
        _l("Language for emails"), choices=language_choices, default="ja"
    )
    confirm_new = BooleanField(_l("Create a new record even though similar records exist"))


def own_profile_form(talks, formdata=None):
    """The speaker's own form, with a self-introduction per upcoming talk."""

    class OwnProfileForm(ProfileForm):
        pass

    for talk in talks:
        setattr(
            OwnProfileForm,
            f"talk_{talk.id}_ja",
            TextAreaField(_l("Japanese"), [Optional(), Length(max=20000)]),
        )
        setattr(
            OwnProfileForm,
            f"talk_{talk.id}_en",
            TextAreaField(_l("English"), [Optional(), Length(max=20000)]),
        )
    form = OwnProfileForm() if formdata is None else OwnProfileForm(formdata=formdata)
    return form


def talk_field_pairs(form, talks):
    return [(t, form[f"talk_{t.id}_ja"], form[f"talk_{t.id}_en"]) for t in talks]


def talk_introductions(form, talks) -> dict:
    return {
        t.id: BilingualText(
            ja=form[f"talk_{t.id}_ja"].data or "", en=form[f"talk_{t.id}_en"].data or ""
        )
        for t in talks
    }


def fill_talk_introductions(form, talks) -> None:
    for t in talks:
        form[f"talk_{t.id}_ja"].data = t.self_introduction.ja
        form[f"talk_{t.id}_en"].data = t.self_introduction.en


class AffiliationForm(FlaskForm):
    organisation_ja = StringField(_l("Organisation (Japanese)"), [Optional(), Length(max=200)])
    organisation_en = StringField(_l("Organisation (English)"), [Optional(), Length(max=200)])
    affiliation_position_ja = StringField(_l("Position (Japanese)"), [Optional(), Length(max=200)])
    affiliation_position_en = StringField(_l("Position (English)"), [Optional(), Length(max=200)])
    started_on = DateField(_l("From"), [Optional()])
    ended_on = DateField(_l("To (leave empty if current)"), [Optional()])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if (
            not (self.organisation_ja.data or "").strip()
            and not (self.organisation_en.data or "").strip()
        ):
            self.organisation_ja.errors = [
                *self.organisation_ja.errors,
                _l("Please enter the organisation."),
            ]
            ok = False
        if (
            self.started_on.data
            and self.ended_on.data
            and self.ended_on.data < self.started_on.data
        ):
            self.ended_on.errors = [
                *self.ended_on.errors,
                _l("The end date must not be before the start date."),
            ]
            ok = False
        return ok

    @property
    def organisation(self) -> BilingualText:
        return BilingualText(
            ja=(self.organisation_ja.data or "").strip(),
            en=(self.organisation_en.data or "").strip(),
        )

    @property
    def position(self) -> BilingualText:
        return BilingualText(
            ja=(self.affiliation_position_ja.data or "").strip(),
            en=(self.affiliation_position_en.data or "").strip(),
        )


class InviteForm(FlaskForm):
    invite_email = EmailField(_l("Email"), [DataRequired(), Email(), Length(max=254)])
    invite_language = SelectField(_l("Language of the email"), choices=language_choices)


class PickSpeakerForm(FlaskForm):
    speaker_id = HiddenField(validators=[DataRequired()])


class TalkIntroductionForm(FlaskForm):
    talk_intro_ja = TextAreaField(
        _l("Self-introduction for this talk (Japanese)"), [Optional(), Length(max=20000)]
    )
    talk_intro_en = TextAreaField(
        _l("Self-introduction for this talk (English)"), [Optional(), Length(max=20000)]
    )


class MergeForm(FlaskForm):
    survivor_id = SelectField(_l("Record to keep"), coerce=int, validators=[DataRequired()])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (buttons that change something)."""


class InstitutionForm(FlaskForm):
    name_ja = StringField(_l("Name (Japanese)"), [Optional(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), [Optional(), Length(max=200)])
    aliases = TextAreaField(
        _l("Other names and spellings (one per line)"), [Optional(), Length(max=5000)]
    )
    ror_id = StringField(_l("ROR identifier (optional)"), [Optional(), Length(max=60)])

    def validate_name_ja(self, field):
        if not (field.data or "").strip() and not (self.name_en.data or "").strip():
            raise ValidationError(_l("Please enter the institution's name."))

    @property
    def name(self) -> BilingualText:
        return BilingualText(ja=self.name_ja.data or "", en=self.name_en.data or "")

    @property
    def alias_list(self) -> list[str]:
        return [line.strip() for line in (self.aliases.data or "").splitlines() if line.strip()]

    def fill(self, institution) -> None:
        self.name_ja.data = institution.name.ja
        self.name_en.data = institution.name.en
        self.aliases.data = "\n".join(institution.aliases)
        self.ror_id.data = institution.ror_id or ""


class InstitutionMergeForm(FlaskForm):
    survivor_id = SelectField(_l("Institution to keep"), coerce=int, validators=[DataRequired()])
