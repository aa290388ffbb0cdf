"""stripe_payments: paying registration fees by card with Stripe Checkout; receipts; refunds.

What it adds, for the events that turn it on:
- ``payment_methods``: "Card payment" for a registration waiting for payment, when the
  settings ``PORTAL_STRIPE_SECRET_KEY`` and ``PORTAL_STRIPE_WEBHOOK_SECRET`` are set (without
  them the method is not offered and the organiser's dashboard panel says why);
- pages: ``/<lang>/payments/card/<reg_id>`` (pay), ``…/payments/<id>/return`` ("payment
  received", or "being confirmed" with an automatic refresh), ``…/payments/<id>/cancelled``,
  ``/<lang>/payments/receipts/<document_id>.pdf`` (the payer only), the organisers' payments
  list with CSV export and refunds (``/<lang>/organiser/events/<slug>/payments/``), and
  ``POST /stripe/webhook`` (no language prefix, signed by Stripe, no CSRF token);
- ``registration_changed``: when a registration stops waiting for payment (confirmed by an
  organiser, cancelled), its open card attempts are marked superseded, so they are not
  reused and ``portal payments reconcile`` expires them at Stripe;
- ``dashboard_panels``: the payments panel on the organiser's event page;
- ``cli_commands``: ``portal payments reconcile`` settles sessions whose webhook never came.

The payments ledger (``models.Payment``) is shared with the ``bank_transfer`` plugin.
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.registration.types import PaymentMethod

name = "stripe_payments"
label = _l("Card payment (Stripe)")
description = _l(
    "Participants pay their fees by card through Stripe Checkout; receipts, refunds and the "
    "payments list with CSV export."
)
default_settings: dict = {
    "cancel_on_full_refund": True,
    "release_seat_when_checkout_expires": True,
    "checkout_hours": 24,
}
settings_labels = {
    "cancel_on_full_refund": _l("Cancel the registration when its payment is refunded in full"),
    "release_seat_when_checkout_expires": _l(
        "Release the place when a card payment session expires unpaid"
    ),
    "checkout_hours": _l("Hours a card payment session stays open (1 to 24)"),
}


@hookimpl
def blueprints():
    from plugins.stripe_payments.views import bp

    return [bp]


@hookimpl
def cli_commands():
    from plugins.stripe_payments.cli import payments_group

    return [payments_group]


@hookimpl
def payment_methods(event, registration):
    from plugins.stripe_payments.services import card_unavailable_reason

    if registration is None or registration.id is None:
        return []
    if registration.state.value != "pending_payment" or registration.total_minor <= 0:
        return []
    if card_unavailable_reason() is not None:
        return []
    return [
        PaymentMethod(
            code="card",
            label=_l("Pay by card"),
            description=_l("Visa, Mastercard, American Express, JCB and others, through Stripe."),
            url=url_for("stripe_payments.card_pay", reg_id=registration.id),
        )
    ]


@hookimpl
def registration_changed(registration, old, new):
    from sqlalchemy.orm import object_session

    from plugins.stripe_payments.services import supersede_open_attempts

    if old is None or registration.id is None:
        return None
    # Paid or cancelled otherwise, or its amount changed: its open card attempts are done.
    leaving = old.value == "pending_payment" and new.value != "pending_payment"
    if leaving or new.value == "cancelled":
        session = object_session(registration)
        if session is not None:
            supersede_open_attempts(session, registration)
    return None


@hookimpl
def dashboard_panels(event, user):
    from plugins.stripe_payments import services
    from portal.db import db

    return [
        Markup(
            render_template(
                "stripe_payments/_panel.html",
                event=event,
                reason=services.card_unavailable_reason(),
                flagged=services.flagged_count(db.session, event),
                totals=services.totals(db.session, event),
                method_labels=services.METHOD_LABELS,
            )
        )
    ]


@hookimpl
def personal_data(person):
    from sqlalchemy.orm import object_session

    from plugins.stripe_payments import services

    session = object_session(person)
    return services.personal_data(session, person) if session is not None else {}


@hookimpl
def forget_person(person):
    from sqlalchemy.orm import object_session

    from plugins.stripe_payments import services

    session = object_session(person)
    if session is not None:
        services.forget_person(session, person)
