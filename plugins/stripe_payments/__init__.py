"""stripe_payments: the card provider of the payments ledger (Stripe Checkout).

What it adds, for the events that turn it on:
- ``payment_providers``: the card provider (``services.CardProvider``): "Pay by card" for a
  registration waiting for payment when the settings ``PORTAL_STRIPE_SECRET_KEY`` and
  ``PORTAL_STRIPE_WEBHOOK_SECRET`` are set; Stripe refunds; ``check`` for ``reconcile``;
- pages: ``/<lang>/payments/card/<reg_id>`` (pay), ``…/payments/<id>/return`` ("payment
  received", or "being confirmed" with an automatic refresh), ``…/payments/<id>/cancelled``
  and ``POST /stripe/webhook`` (no language prefix, signed by Stripe, no CSRF token);
- ``registration_changed``: when a registration stops waiting for payment (confirmed by an
  organiser, cancelled), its open card attempts are marked superseded, so they are not
  reused and ``reconcile`` expires them at Stripe;
- ``dashboard_panels``: the card payments panel on the organiser's event page.

The ledger (payments, receipts, refunds, the payments list) is ``portal.payments``.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl

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
def payment_providers():
    from plugins.stripe_payments.services import provider

    return [provider]


@hookimpl
def registration_changed(registration, old, new):
    from sqlalchemy.orm import object_session

    from portal.payments.services import supersede_open_attempts

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
    from portal.payments import providers
    from portal.payments import services as ledger

    return [
        Markup(
            render_template(
                "stripe_payments/_panel.html",
                event=event,
                reason=services.card_unavailable_reason(),
                flagged=ledger.flagged_count(db.session, event),
                totals=ledger.totals(db.session, event),
                method_labels=providers.labels(),
            )
        )
    ]
