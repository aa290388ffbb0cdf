"""Bank transfers: the account and reference shown to the payer, and recording a transfer.

Recording goes through the payments ledger (``portal.payments.services.record_payment``) and
its one confirming function, so a bank transfer is checked, confirmed and receipted exactly
like a card payment. ``BankTransferProvider`` is the provider this plugin registers.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import plugins
from portal.events.models import Event
from portal.payments import offline
from portal.payments import services as payments
from portal.payments.models import Payment
from portal.payments.providers import PaymentProvider
from portal.registration.models import Registration

PLUGIN = "bank_transfer"
METHOD = "bank_transfer"
NotAwaitingPayment = payments.NotAwaitingPayment


def bank_account(event: Event) -> str:
    """The account to pay into: the event's setting, else PORTAL_ISSUER_BANK_ACCOUNT."""
    own = (plugins.settings(event, PLUGIN).get("bank_account") or "").strip()
    return own or (current_app.config.get("ISSUER_BANK_ACCOUNT") or "").strip()


def reference(registration: Registration) -> str:
    """What the payer quotes with the transfer (before their name, as Japanese banks allow)."""
    return f"R{registration.id:06d}"


def awaiting(event: Event) -> sa.Select:
    """Registrations of the event waiting for a payment, deadline first (for pagination)."""
    return offline.awaiting(event, by_deadline=True)


awaiting_count = offline.awaiting_count


def record_transfer(
    session: Session,
    registration: Registration,
    *,
    actor,
    amount_minor: int,
    note: str = "",
    now: datetime | None = None,
) -> Payment:
    """An organiser saw the transfer arrive: a bank-transfer payment, confirmed at once by the
    ledger (a different amount is recorded and flagged; the registration stays pending)."""
    return payments.record_payment(
        session,
        registration,
        method=METHOD,
        actor=actor,
        amount_minor=amount_minor,
        note=note,
        now=now,
    )


class BankTransferProvider(PaymentProvider):
    """Bank transfer (銀行振込): the participant transfers, an organiser records it."""

    code = METHOD
    plugin = PLUGIN
    label = _l("Bank transfer")

    def unavailable_reason(self, event) -> str | None:
        if not bank_account(event):
            return str(
                _l(
                    "Bank transfer is not offered: no bank account is set (the plugin's "
                    "setting or PORTAL_ISSUER_BANK_ACCOUNT)."
                )
            )
        return None

    def payment_method(self, event, registration):
        from flask import url_for

        from portal.registration.types import PaymentMethod

        if not bank_account(event):
            return None
        return PaymentMethod(
            code=METHOD,
            label=_l("Pay by bank transfer"),
            description=_l(
                "Quote the reference %(reference)s with your transfer. Your registration is "
                "confirmed once the organisers have seen the money arrive.",
                reference=reference(registration),
            ),
            url=url_for("bank_transfer.instructions", reg_id=registration.id),
        )


provider = BankTransferProvider()
