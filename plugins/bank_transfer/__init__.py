"""bank_transfer: participants pay by bank transfer (銀行振込); an organiser records it.

A second payment method beside ``stripe_payments``, to keep ``payment_methods`` general:
- ``payment_methods``: "Bank transfer" for a registration waiting for payment, with a page
  giving the account, the amount, the deadline and the reference to quote;
- the organisers' page ``/<lang>/organiser/events/<slug>/bank-transfers/`` lists the
  registrations waiting for payment; "Mark as paid" records the transfer in the payments
  ledger (``plugins.stripe_payments.models.Payment``, method ``bank_transfer``) and confirms it
  through the same ``confirm_payment`` as card payments: amount check, registration
  confirmed, receipt issued and emailed;
- ``dashboard_panels``: a link to that page with the number waiting.
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl
from portal.registration.types import PaymentMethod

name = "bank_transfer"
label = _l("Bank transfer")
description = _l(
    "Participants pay by bank transfer; an organiser marks the registration as paid, which "
    "issues the receipt."
)
default_settings: dict = {"bank_account": ""}
settings_labels = {
    "bank_account": _l("Bank account (empty: the account in the portal's settings)"),
}


@hookimpl
def blueprints():
    from plugins.bank_transfer.views import bp

    return [bp]


@hookimpl
def payment_methods(event, registration):
    from plugins.bank_transfer import services

    if registration is None or registration.id is None:
        return []
    if registration.state.value != "pending_payment" or registration.total_minor <= 0:
        return []
    if not services.bank_account(event):
        return []
    return [
        PaymentMethod(
            code="bank_transfer",
            label=_l("Pay by bank transfer"),
            description=_l(
                "Quote the reference %(reference)s with your transfer. Your registration is "
                "confirmed once the organisers have seen the money arrive.",
                reference=services.reference(registration),
            ),
            url=url_for("bank_transfer.instructions", reg_id=registration.id),
        )
    ]


@hookimpl
def dashboard_panels(event, user):
    from plugins.bank_transfer import services
    from portal.db import db

    return [
        Markup(
            render_template(
                "bank_transfer/_panel.html",
                event=event,
                waiting=services.awaiting_count(db.session, event),
            )
        )
    ]
