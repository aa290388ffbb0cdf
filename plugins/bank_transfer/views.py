"""Bank transfer pages: the payer's instructions and the organisers' "mark as paid" list."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.bank_transfer import forms, services
from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.payments import offline
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
    return offline.organiser_event(slug, services.PLUGIN)


def _blank_form(registration: Registration) -> forms.TransferForm:
    return forms.TransferForm(
        formdata=None,
        data={"registration_id": registration.id, "amount": offline.amount_text(registration)},
        prefix=f"r{registration.id}",
    )


def _render_list(event: Event, failed=None, status: int = 200):
    page, rows = offline.rows(event, services.awaiting(event), PER_PAGE, _blank_form, failed)
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
        flash(offline.not_waiting_message(), "error")
        return _render_list(event, status=400)
    form = forms.TransferForm(prefix=f"r{reg_id}")
    form.registration_id.data = str(reg_id)
    if not form.validate_on_submit():
        return _render_list(event, failed=(reg_id, form), status=400)
    payment = offline.record(
        form,
        registration,
        lambda amount: services.record_transfer(
            db.session, registration, actor=current_user, amount_minor=amount, note=form.note.data
        ),
    )
    if payment is None:
        return _render_list(event, failed=(reg_id, form), status=400)
    name = registration.person.display_name
    offline.flash_recorded(
        payment,
        attention=lambda problem: _(
            "The transfer from %(name)s was recorded, but it needs your attention: %(problem)s",
            name=name,
            problem=problem,
        ),
        done=_(
            "The transfer from %(name)s was recorded and the registration confirmed.", name=name
        ),
    )
    return redirect(url_for(".organiser_list", slug=slug, page=request.args.get("page", 1)))
