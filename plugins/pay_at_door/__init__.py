"""pay_at_door: participants pay at the reception on the day (当日払い).

A third payment provider, written as one plugin folder against the provider interface
(``portal.payments.providers``), nothing else:
- ``payment_providers``: "Pay at the door" for a registration waiting for payment: the
  participant reads that they pay at the reception on the day;
- the organisers' page ``/<lang>/organiser/events/<slug>/at-the-door/`` (linked from the
  dashboard panel) lists the registrations waiting for payment; "Paid and checked in" records
  the money in the ledger (method ``at_door``), which confirms the registration and issues the
  receipt, and checks the participant in (受付).
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl

name = "pay_at_door"
label = _l("Pay at the door")
description = _l(
    "Participants pay at the reception on the day; an organiser records the money at check-in, "
    "which confirms the registration and issues the receipt."
)
default_settings: dict = {"note": ""}
settings_labels = {"note": _l("Note for participants (e.g. cash only, exact change)")}


@hookimpl
def blueprints():
    from plugins.pay_at_door.views import bp

    return [bp]


@hookimpl
def payment_providers():
    from plugins.pay_at_door.services import provider

    return [provider]


@hookimpl
def dashboard_panels(event, user):
    from plugins.pay_at_door import services
    from portal.db import db

    return [
        Markup(
            render_template(
                "pay_at_door/_panel.html",
                event=event,
                waiting=services.awaiting_count(db.session, event),
            )
        )
    ]
