"""bank_transfer: participants pay by bank transfer (銀行振込); an organiser records it.

A payment provider of the payments ledger (``portal.payments``), and the worked example of
docs/payments.md:
- ``payment_providers``: the bank transfer provider (``services.BankTransferProvider``):
  "Pay by bank transfer" for a registration waiting for payment, with a page giving the
  account, the amount, the deadline and the reference to quote;
- the organisers' page ``/<lang>/organiser/events/<slug>/bank-transfers/`` lists the
  registrations waiting for payment; "Mark as paid" records the transfer in the ledger
  (``portal.payments.services.record_payment``, method ``bank_transfer``), which confirms it
  through the same ``confirm_payment`` as card payments: amount check, registration
  confirmed, receipt issued and emailed;
- ``dashboard_panels``: a link to that page with the number waiting.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl

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
def payment_providers():
    from plugins.bank_transfer.services import provider

    return [provider]


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
