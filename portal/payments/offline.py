"""Money an organiser records by hand: the shared part of the offline providers.

Bank transfer (``plugins/bank_transfer``) and paying at the door (``plugins/pay_at_door``)
both show the registrations of an event that wait for a payment, one "amount received" form
per row, and record the amount through the ledger (``payments.record_payment``), which
confirms the registration, issues the receipt, or flags a different amount. A plugin describes
its page once as a ``Desk`` (template, list, forms) and its two views call ``Desk.render`` and
``Desk.record``; the template lays its rows out with ``payments/_offline_desk.html``. What
differs (the order of the list, the form's fields, what else happens, the words) stays in the
plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template
from sqlalchemy.orm import Session, joinedload

from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.i18n import from_minor
from portal.pagination import Page, page_number, paginate
from portal.payments import services as payments
from portal.payments.models import Payment
from portal.registration.models import Registration, RegistrationState
from portal.registration.queries import get_for_event
from portal.transactions import state_change


def awaiting(event: Event, *, by_deadline: bool = False) -> sa.Select:
    """Registrations of the event waiting for a payment (by deadline, or in order)."""
    order = (Registration.payment_deadline, Registration.id) if by_deadline else (Registration.id,)
    return (
        sa.select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.state == RegistrationState.pending_payment,
            Registration.total_minor > 0,
        )
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
        .order_by(*order)
    )


def awaiting_count(session: Session, event: Event) -> int:
    stmt = sa.select(sa.func.count()).select_from(awaiting(event).order_by(None).subquery())
    return session.scalar(stmt) or 0


def amount_text(registration: Registration) -> str:
    """What the registration owes, as typed in the form (5000 / 250.00)."""
    return str(from_minor(registration.total_minor, registration.currency))


def rows(
    event: Event, select: sa.Select, per_page: int, blank_form: Callable, failed=None
) -> tuple[Page, list]:
    """A page of registrations waiting for a payment, each with its form: ``blank_form(reg)``,
    or ``failed`` = (registration id, the form as sent) for the row whose input was refused."""
    page = paginate(db.session, select, page_number(), per_page)
    found = []
    for registration in page.items:
        if failed is not None and failed[0] == registration.id:
            found.append((registration, failed[1]))
        else:
            found.append((registration, blank_form(registration)))
    return page, found


def record(form, registration: Registration, record_fn: Callable[[int], Payment]):
    """Parse the form's amount and record it with ``record_fn(amount_minor)``; commits. A
    refused amount rolls back and goes on the form's amount field (returns None)."""
    with state_change(form, field="amount") as change:
        amount = payments.parse_amount(form.amount.data, registration.currency)
        payment = record_fn(amount)
    return payment if change.ok else None


def flash_recorded(payment: Payment, *, attention: Callable[[str], str], done: str) -> None:
    """The organiser's message: ``done`` (a success), or ``attention(problem)`` with the flag's
    label when the ledger flagged the payment (a different amount, say)."""
    if payment.flag:
        flash(attention(str(payments.FLAG_LABELS.get(payment.flag, payment.flag))), "error")
    else:
        flash(done, "success")


def not_waiting_message() -> str:
    return str(payments.NotAwaitingPayment.default_message)


@dataclass(frozen=True)
class Desk:
    """An offline provider's organiser page: the registrations waiting for a payment, one
    "amount received" form a row (``blank_form(registration)``), and the post that records it.
    ``context(event)`` adds the template's own values."""

    plugin: str
    template: str
    per_page: int
    awaiting: Callable[[Event], sa.Select]
    blank_form: Callable[[Registration], object]
    context: Callable[[Event], dict] = field(default=lambda event: {})

    def event(self, slug: str) -> Event:
        return plugins.organiser_event(slug, self.plugin)

    def render(self, event: Event, failed=None, status: int = 200):
        page, found = rows(event, self.awaiting(event), self.per_page, self.blank_form, failed)
        context = self.context(event)
        return render_template(self.template, event=event, page=page, rows=found, **context), status

    def record(
        self,
        event: Event,
        reg_id: int,
        form,
        record_fn: Callable[[Registration, int], Payment],
        *,
        attention,
        done,
        back: str,
    ):
        """The post of one row's form: 404 for a registration of another event; the page again
        (400) when it no longer waits, the amount is refused or the ledger refuses it; else
        the organiser's message (``done`` or ``attention``, lazy texts with ``%(name)s`` and
        ``%(problem)s``) and a redirect to ``back``."""
        registration = get_for_event(db.session, event, reg_id)
        if registration is None:
            abort(404)
        if registration.state != RegistrationState.pending_payment:
            flash(not_waiting_message(), "error")
            return self.render(event, status=400)
        if not form.validate_on_submit():
            return self.render(event, failed=(reg_id, form), status=400)
        payment = record(form, registration, lambda amount: record_fn(registration, amount))
        if payment is None:
            return self.render(event, failed=(reg_id, form), status=400)
        name = registration.person.display_name
        flash_recorded(
            payment,
            attention=lambda problem: str(attention) % {"name": name, "problem": problem},
            done=str(done) % {"name": name},
        )
        return redirect(back)
