"""What a registration costs: the registration settings (payment days), fee categories (with
early-bird prices and members-only ones), the price lines (plugins add theirs through
``price_lines``), the fields and payment methods plugins contribute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit, plugins
from portal.accounts.models import Role
from portal.db import utcnow
from portal.events.models import Event
from portal.i18n import LANGUAGES, BilingualText
from portal.registration.errors import InvalidChoice, RegistrationError
from portal.registration.models import (
    FeeCategory,
    Registration,
    RegistrationSettings,
    RegistrationState,
)
from portal.registration.types import PaymentMethod, PriceLine, RegistrationField

DEFAULT_PAYMENT_DAYS = 3


def settings_for(session: Session, event: Event) -> RegistrationSettings:
    row = session.get(RegistrationSettings, event.id)
    return row or RegistrationSettings(event_id=event.id, payment_days=DEFAULT_PAYMENT_DAYS)


def update_settings(session: Session, event: Event, *, payment_days: int, actor) -> None:
    """Store the event's registration settings (payment deadline in days)."""
    if payment_days < 1 or payment_days > 60:
        raise RegistrationError(_l("Enter a number of days from 1 to 60."), field="payment_days")
    row = session.get(RegistrationSettings, event.id)
    if row is None:
        row = RegistrationSettings(event_id=event.id)
        session.add(row)
    old = row.payment_days
    row.payment_days = payment_days
    session.flush()
    audit.record(
        session, actor, "event", event.id, "registration_settings", old=old, new=payment_days
    )


_FEE_CATEGORIES: dict[bool, sa.Select] = {}


def fee_categories(session: Session, event: Event, active_only: bool = True) -> list[FeeCategory]:
    """The event's fee categories in their order (the statement is built once, with a bound
    parameter: the event page renders the fee table from it)."""
    stmt = _FEE_CATEGORIES.get(active_only)
    if stmt is None:
        stmt = sa.select(FeeCategory).where(FeeCategory.event_id == sa.bindparam("event_id"))
        if active_only:
            stmt = stmt.where(FeeCategory.is_active.is_(True))
        stmt = _FEE_CATEGORIES[active_only] = stmt.order_by(FeeCategory.position, FeeCategory.id)
    return list(session.scalars(stmt, {"event_id": event.id}))


def registration_fields(event: Event) -> list[RegistrationField]:
    """Extra form fields from the plugins enabled on the event."""
    return plugins.call_event_hook("registration_fields", event)


def payment_methods(event: Event, registration: Registration) -> list[PaymentMethod]:
    """Ways to pay offered by the plugins enabled on the event: the payment providers'
    (``portal.payments.providers``) while the registration owes something, then the
    ``payment_methods`` hook's."""
    from portal.payments import providers

    offered = []
    if (
        registration is not None
        and registration.id is not None
        and registration.state == RegistrationState.pending_payment
        and registration.total_minor > 0
    ):
        for provider in providers.for_event(event):
            method = provider.payment_method(event, registration)
            if method is not None:
                offered.append(method)
    return offered + plugins.collect(
        plugins.event_hooks(event).payment_methods(event=event, registration=registration)
    )


def is_member(user, series) -> bool:
    """The app-wide ``member_status`` hook decides; without an answer, the ``member`` role."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    answer = plugins.manager().hook.member_status(user=user, series=series)
    if answer is not None:
        return bool(answer)
    return user.has_role(Role.member, series.id)


def _label_dict(label: Any) -> dict[str, str]:
    """A price line's label in both languages, for the stored snapshot."""
    if isinstance(label, BilingualText | dict):
        return BilingualText.of(label).as_dict()
    if isinstance(label, str):
        return {"ja": label, "en": label}
    out = {}
    for lang in LANGUAGES:
        with force_locale(lang):
            out[lang] = str(label)
    return out


def _category_line(category: FeeCategory, event: Event, now: datetime) -> PriceLine:
    currency = event.series.currency
    amount = category.price_at(now)
    if category.is_early_bird_at(now):
        label = {}
        for lang in LANGUAGES:
            with force_locale(lang):
                label[lang] = str(
                    _l(
                        "%(category)s (early-bird price)",
                        category=category.name.get(lang, event.series.default_language),
                    )
                )
        label = BilingualText.of(label)
    else:
        label = category.name
    return PriceLine(
        code=f"fee:{category.code}", label=label, amount_minor=amount, currency=currency
    )


def compute_price_lines(registration: Registration, now: datetime | None = None) -> list[PriceLine]:
    """The fee category's price (early-bird until its date) plus the plugins' price lines."""
    now = now or utcnow()
    event = registration.event
    currency = event.series.currency
    lines: list[PriceLine] = []
    if registration.fee_category is not None:
        lines.append(_category_line(registration.fee_category, event, now))
    extra = plugins.collect(plugins.event_hooks(event).price_lines(registration=registration))
    for line in extra:
        if line.currency.upper() != currency.upper():
            raise ValueError(
                f"price line {line.code!r} is in {line.currency}, the event charges {currency}"
            )
        lines.append(line)
    return lines


def _apply_prices(registration: Registration, now: datetime) -> None:
    lines = compute_price_lines(registration, now)
    registration.currency = registration.event.series.currency
    registration.price_lines = [
        {
            "code": line.code,
            "label": _label_dict(line.label),
            "amount_minor": int(line.amount_minor),
            "currency": line.currency.upper(),
        }
        for line in lines
    ]
    registration.total_minor = sum(int(line.amount_minor) for line in lines)


def save_fee_category(
    session: Session,
    event: Event,
    *,
    actor,
    category: FeeCategory | None = None,
    code: str,
    name: BilingualText,
    price_minor: int,
    early_bird_price_minor: int | None = None,
    early_bird_until: datetime | None = None,
    requires_membership: bool = False,
    position: int = 0,
) -> FeeCategory:
    """Create or edit a fee category of the event (prices in minor units)."""
    code = (code or "").strip()
    duplicate = session.scalar(
        sa.select(FeeCategory.id).where(
            FeeCategory.event_id == event.id,
            FeeCategory.code == code,
            FeeCategory.id != (category.id if category is not None else -1),
        )
    )
    if duplicate is not None:
        raise RegistrationError(_l("This code is already used for this event."), field="code")
    if price_minor < 0 or (early_bird_price_minor is not None and early_bird_price_minor < 0):
        raise RegistrationError(_l("Prices cannot be negative."), field="price")
    if (early_bird_price_minor is None) != (early_bird_until is None):
        raise RegistrationError(
            _l("Give both the early-bird price and its last date, or neither."),
            field="early_bird_until",
        )
    created = category is None
    if created:
        category = FeeCategory(event_id=event.id, is_active=True)
        session.add(category)
    elif category.event_id != event.id:
        raise InvalidChoice(field="code")
    category.code = code
    category.name = name
    category.price_minor = price_minor
    category.early_bird_price_minor = early_bird_price_minor
    category.early_bird_until = early_bird_until
    category.requires_membership = requires_membership
    category.position = position
    session.flush()
    audit.record(
        session,
        actor,
        "fee_category",
        category.id,
        "created" if created else "edited",
        event_id=event.id,
        code=code,
        price_minor=price_minor,
        early_bird_price_minor=early_bird_price_minor,
    )
    return category


def set_fee_category_active(
    session: Session, category: FeeCategory, active: bool, *, actor
) -> FeeCategory:
    """Deactivate (or reactivate) a fee category; existing registrations keep it."""
    if category.is_active == active:
        return category
    category.is_active = active
    session.flush()
    audit.record(
        session, actor, "fee_category", category.id, "activated" if active else "deactivated"
    )
    return category
