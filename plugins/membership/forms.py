"""Forms of the membership pages: companies, memberships, payments, members, invitations."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional, ValidationError

from plugins.membership.services import parse_domains
from portal.i18n import BilingualText, minor_units, to_minor

REQUIRED = _l("Please fill in this field.")
EMAIL = _l("Please enter a valid email address, for example name@example.co.jp.")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class CompanyForm(FlaskForm):
    name_ja = StringField(
        _l("Company name (Japanese)"), filters=[_strip], validators=[Length(max=200)]
    )
    name_en = StringField(
        _l("Company name (English)"), filters=[_strip], validators=[Length(max=200)]
    )
    contact_name = StringField(
        _l("Contact person"),
        filters=[_strip],
        validators=[InputRequired(message=REQUIRED), Length(max=200)],
    )
    contact_email = StringField(
        _l("Contact person's email address"),
        filters=[_strip],
        validators=[InputRequired(message=REQUIRED), Email(message=EMAIL), Length(max=254)],
    )
    billing_address = TextAreaField(
        _l("Billing address"), filters=[_strip], validators=[Length(max=1000)]
    )
    domains = TextAreaField(
        _l("Email domains"),
        filters=[_strip],
        description=_l(
            "One per line, for example example.co.jp. Subdomains are listed separately."
        ),
    )
    language = SelectField(
        _l("Language of invoices, receipts and emails"),
        choices=[SelectChoice("ja", _l("Japanese")), SelectChoice("en", _l("English"))],
        default="ja",
    )

    def __init__(self, *args, company=None, **kwargs):
        if company is not None and "formdata" not in kwargs and not kwargs.get("data"):
            kwargs["data"] = {
                "name_ja": company.name.ja,
                "name_en": company.name.en,
                "contact_name": company.contact_name,
                "contact_email": company.contact_email,
                "billing_address": company.billing_address,
                "domains": "\n".join(company.domains),
                "language": company.language,
            }
        super().__init__(*args, **kwargs)
        self.parsed_domains: list[str] = []

    def validate_name_ja(self, field):
        if not field.data and not self.name_en.data:
            raise ValidationError(_l("Please enter the company name in Japanese or English."))

    def validate_domains(self, field):
        good, bad = parse_domains(field.data or "")
        if bad:
            raise ValidationError(
                _l(
                    "These are not email domains: %(domains)s. Enter domains such as example.co.jp.",
                    domains=", ".join(bad),
                )
            )
        self.parsed_domains = good

    def values(self) -> dict:
        return {
            "name": BilingualText(ja=self.name_ja.data or "", en=self.name_en.data or ""),
            "contact_name": self.contact_name.data,
            "contact_email": self.contact_email.data.lower(),
            "billing_address": self.billing_address.data or "",
            "language": self.language.data,
            "domains": self.parsed_domains,
        }


class MembershipForm(FlaskForm):
    fiscal_year = IntegerField(
        _l("Fiscal year (April to March)"),
        validators=[
            InputRequired(message=_l("Enter the fiscal year, for example 2026.")),
            NumberRange(min=2000, max=2100, message=_l("Enter a year between 2000 and 2100.")),
        ],
    )
    tier_ja = StringField(_l("Fee tier (Japanese)"), filters=[_strip], validators=[Length(max=100)])
    tier_en = StringField(_l("Fee tier (English)"), filters=[_strip], validators=[Length(max=100)])
    amount = StringField(
        _l("Annual fee"), filters=[_strip], validators=[InputRequired(message=REQUIRED)]
    )
    due_date = DateField(
        _l("Payment due by"),
        validators=[Optional()],
        format="%Y-%m-%d",
    )

    def __init__(self, *args, currency: str = "JPY", **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.amount_minor = 0

    def validate_amount(self, field):
        raw = (field.data or "").replace(",", "").replace("¥", "").replace("$", "").strip()
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is not None and not value.is_finite():
            value = None
        digits = minor_units(self.currency)
        if value is None or value < 0 or value.as_tuple().exponent < -digits:
            if digits == 0:
                raise ValidationError(_l("Enter the amount in whole yen, for example 100000."))
            raise ValidationError(
                _l(
                    "Enter the amount with at most %(digits)s decimals, for example 1500.00.",
                    digits=digits,
                )
            )
        self.amount_minor = to_minor(value, self.currency)

    def tier(self) -> BilingualText:
        return BilingualText(ja=self.tier_ja.data or "", en=self.tier_en.data or "")


class PaymentForm(FlaskForm):
    paid_on = DateField(
        _l("Date of the bank transfer"),
        validators=[InputRequired(message=_l("Enter the date of the transfer."))],
        format="%Y-%m-%d",
    )


class EmailForm(FlaskForm):
    email = StringField(
        _l("Email address"),
        filters=[_strip],
        validators=[InputRequired(message=REQUIRED), Email(message=EMAIL), Length(max=254)],
    )


class ConfirmForm(FlaskForm):
    """A button that only needs the CSRF token."""


class AnnualInvoicesForm(FlaskForm):
    """Issue the year's invoices to every member company (after the preview)."""

    due_date = DateField(_l("Payment due by"), validators=[Optional()], format="%Y-%m-%d")
