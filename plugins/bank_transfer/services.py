"""Bank transfers: the account and reference shown to the payer, and recording a transfer.

Recording goes through the payments ledger and its one confirming function
(``plugins.stripe_payments.services.confirm_payment``), so a bank transfer is checked,
confirmed and receipted exactly like a card payment.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from plugins.stripe_payments import services as payments
from plugins.stripe_payments.models import Payment, PaymentMethodCode, PaymentState
from portal import audit, plugins
from portal.accounts.models import Person
from portal.events.models import Event
from portal.i18n import LANGUAGES
from portal.registration.models import Registration, RegistrationState

PLUGIN = "bank_transfer"


class NotAwaitingPayment(payments.PaymentError):
    default_message = _l("This registration is not waiting for a payment.")


def bank_account(event: Event) -> str:
    """The account to pay into: the event's setting, else PORTAL_ISSUER_BANK_ACCOUNT."""
    own = (plugins.settings(event, PLUGIN).get("bank_account") or "").strip()
    return own or (current_app.config.get("ISSUER_BANK_ACCOUNT") or "").strip()


def reference(registration: Registration) -> str:
    """What the payer quotes with the transfer (before their name, as Japanese banks allow)."""
    return f"R{registration.id:06d}"


def awaiting(event: Event) -> sa.Select:
    """Registrations of the event waiting for a payment, deadline first (for pagination)."""
    return (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            Registration.event_id == event.id,
            Registration.state == RegistrationState.pending_payment,
            Registration.total_minor > 0,
        )
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
        .order_by(Registration.payment_deadline, Registration.id)
    )


def awaiting_count(session: Session, event: Event) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count()).select_from(awaiting(event).order_by(None).subquery())
        )
        or 0
    )


def record_transfer(
    session: Session,
    registration: Registration,
    *,
    actor,
    amount_minor: int,
    note: str = "",
    now: datetime | None = None,
) -> Payment:
    """An organiser saw the transfer arrive: a bank-transfer payment, confirmed at once.

    The amount received is what the organiser typed; when it differs from what the
    registration owes, the payment is recorded and flagged and the registration stays pending.
    """
    if registration.state != RegistrationState.pending_payment or registration.total_minor <= 0:
        raise NotAwaitingPayment(field="amount")
    if amount_minor <= 0:
        raise payments.PaymentError(_l("Enter an amount greater than zero."), field="amount")
    person = registration.person
    payment = Payment(
        registration_id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        method=PaymentMethodCode.bank_transfer,
        state=PaymentState.pending,
        amount_minor=registration.total_minor,
        currency=registration.currency.upper(),
        language=person.preferred_language if person.preferred_language in LANGUAGES else "ja",
        note=(note or "").strip()[:1000],
        created_by_id=getattr(actor, "id", None),
    )
    session.add(payment)
    session.flush()
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        "bank_transfer_recorded",
        registration_id=registration.id,
        amount_minor=amount_minor,
        note=payment.note,
    )
    return payments.confirm_payment(
        session,
        payment.id,
        received_minor=amount_minor,
        received_currency=registration.currency,
        source="organiser",
        actor=actor,
        now=now,
    )
