"""Bank transfer pages: the payer's instructions and the organisers' "mark as paid" list."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from plugins.bank_transfer import forms, services
from portal import plugins
from portal.db import db
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


def _blank_form(registration: Registration) -> forms.TransferForm:
    return forms.TransferForm(
        formdata=None,
        data={"registration_id": registration.id, "amount": offline.amount_text(registration)},
        prefix=f"r{registration.id}",
    )


desk = offline.Desk(
    plugin=services.PLUGIN,
    template="bank_transfer/organiser_list.html",
    per_page=PER_PAGE,
    awaiting=services.awaiting,
    blank_form=_blank_form,
    context=lambda event: {
        "reference": services.reference,
        "account": services.bank_account(event),
    },
)


@bp.get("/<lang_code>/organiser/events/<slug>/bank-transfers/")
@login_required
def organiser_list(slug: str):
    return desk.render(desk.event(slug))


@bp.post("/<lang_code>/organiser/events/<slug>/bank-transfers/<int:reg_id>")
@login_required
def mark_received(slug: str, reg_id: int):
    form = forms.TransferForm(prefix=f"r{reg_id}")
    form.registration_id.data = str(reg_id)
    return desk.record(
        desk.event(slug),
        reg_id,
        form,
        lambda registration, amount: services.record_transfer(
            db.session, registration, actor=current_user, amount_minor=amount, note=form.note.data
        ),
        attention=_l(
            "The transfer from %(name)s was recorded, but it needs your attention: %(problem)s"
        ),
        done=_l("The transfer from %(name)s was recorded and the registration confirmed."),
        back=url_for(".organiser_list", slug=slug, page=request.args.get("page", 1)),
    )
