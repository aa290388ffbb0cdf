"""Bank transfer pages: the payer's instructions and the organisers' "mark as paid" list."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.bank_transfer import forms, services
from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.i18n import from_minor
from portal.pagination import page_number, paginate
from portal.payments import services as payments
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState

bp = Blueprint("bank_transfer", __name__, template_folder="templates")
PER_PAGE = 50


@bp.get("/<lang_code>/payments/bank-transfer/<int:reg_id>")
@login_required
def instructions(reg_id: int):
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    event = registration.event
    plugins.require_enabled(event, services.PLUGIN)
    return render_template(
        "bank_transfer/instructions.html",
        registration=registration,
        event=event,
        account=services.bank_account(event),
        reference=services.reference(registration),
        waiting=registration.state == RegistrationState.pending_payment
        and registration.total_minor > 0,
    )


def _organiser_event(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    plugins.require_enabled(event, services.PLUGIN)
    return event


def _amount_text(registration: Registration) -> str:
    return str(from_minor(registration.total_minor, registration.currency))


def _render_list(event: Event, failed_form=None, status: int = 200):
    page = paginate(db.session, services.awaiting(event), page_number(), PER_PAGE)
    rows = []
    for registration in page.items:
        if failed_form is not None and failed_form.registration_id.data == str(registration.id):
            form = failed_form
        else:
            form = forms.TransferForm(
                formdata=None,
                data={"registration_id": registration.id, "amount": _amount_text(registration)},
                prefix=f"r{registration.id}",
            )
        rows.append((registration, form))
    return (
        render_template(
            "bank_transfer/organiser_list.html",
            event=event,
            page=page,
            rows=rows,
            reference=services.reference,
            account=services.bank_account(event),
        ),
        status,
    )


@bp.get("/<lang_code>/organiser/events/<slug>/bank-transfers/")
@login_required
def organiser_list(slug: str):
    return _render_list(_organiser_event(slug))


@bp.post("/<lang_code>/organiser/events/<slug>/bank-transfers/<int:reg_id>")
@login_required
def mark_received(slug: str, reg_id: int):
    event = _organiser_event(slug)
    registration = registrations.get_for_event(db.session, event, reg_id)
    if registration is None:
        abort(404)
    if registration.state != RegistrationState.pending_payment:
        flash(str(services.NotAwaitingPayment.default_message), "error")
        return _render_list(event, status=400)
    form = forms.TransferForm(prefix=f"r{reg_id}")
    form.registration_id.data = str(reg_id)
    if not form.validate_on_submit():
        return _render_list(event, failed_form=form, status=400)
    try:
        amount = payments.parse_amount(form.amount.data, registration.currency)
        payment = services.record_transfer(
            db.session, registration, actor=current_user, amount_minor=amount, note=form.note.data
        )
    except payments.PaymentError as exc:
        db.session.rollback()
        form.amount.errors = [*form.amount.errors, str(exc.message)]
        return _render_list(event, failed_form=form, status=400)
    db.session.commit()
    name = registration.person.display_name
    if payment.flag:
        flash(
            _(
                "The transfer from %(name)s was recorded, but it needs your attention: %(problem)s",
                name=name,
                problem=payments.FLAG_LABELS.get(payment.flag, payment.flag),
            ),
            "error",
        )
    else:
        flash(
            _("The transfer from %(name)s was recorded and the registration confirmed.", name=name),
            "success",
        )
    return redirect(url_for(".organiser_list", slug=slug, page=request.args.get("page", 1)))
