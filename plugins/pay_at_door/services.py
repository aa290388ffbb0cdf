"""Paying at the door: the provider and the one state change, "paid and checked in"."""

from __future__ import annotations

from datetime import datetime

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import Session

from portal import plugins
from portal.payments import offline
from portal.payments import services as payments
from portal.payments.models import Payment
from portal.payments.providers import PaymentProvider
from portal.registration import services as registrations
from portal.registration.models import Registration

PLUGIN = "pay_at_door"
METHOD = "at_door"


awaiting = offline.awaiting  # registrations waiting for a payment, in order
awaiting_count = offline.awaiting_count


def collect_and_check_in(
    session: Session,
    registration: Registration,
    *,
    actor,
    amount_minor: int,
    note: str = "",
    now: datetime | None = None,
) -> Payment:
    """The money was taken at the reception: recorded in the ledger (which confirms the
    registration and issues the receipt) and the participant checked in. A different amount
    is recorded and flagged, and the participant is not checked in (the office sorts it out).
    """
    payment = payments.record_payment(
        session,
        registration,
        method=METHOD,
        actor=actor,
        amount_minor=amount_minor,
        note=note,
        now=now,
    )
    if payment.flag is None:
        registrations.check_in(session, payment.registration, actor=actor, now=now)
    return payment


class AtDoorProvider(PaymentProvider):
    """当日払い: the participant pays at the reception; an organiser records it at check-in."""

    code = METHOD
    plugin = PLUGIN
    label = _l("Paid at the door")

    def payment_method(self, event, registration):
        from portal.registration.types import PaymentMethod

        return PaymentMethod(
            code=METHOD,
            label=_l("Pay at the door"),
            description=_l(
                "Pay at the reception on the day. Your place is held until the payment deadline."
            ),
        )

    def instructions(self, registration) -> Markup | None:
        note = (plugins.settings(registration.event, PLUGIN).get("note") or "").strip()
        return Markup(
            render_template("pay_at_door/_instructions.html", registration=registration, note=note)
        )


provider = AtDoorProvider()
