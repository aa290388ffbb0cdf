"""The reception's page: registrations waiting for payment, "paid and checked in"."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from plugins.pay_at_door import services
from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.i18n import from_minor
from portal.pagination import page_number, paginate
from portal.payments import services as payments
from portal.registration import services as registrations
from portal.registration.models import RegistrationState

bp = Blueprint("pay_at_door", __name__, template_folder="templates")
PER_PAGE = 100


class CollectForm(FlaskForm):
    amount = StringField(_l("Amount received"), [InputRequired(_l("Enter the amount received."))])


def _organiser_event(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    plugins.require_enabled(event, services.PLUGIN)
    return event


def _render(event, failed=None, status=200):
    page = paginate(db.session, services.awaiting(event), page_number(), PER_PAGE)
    rows = []
    for registration in page.items:
        if failed is not None and failed[0] == registration.id:
            form = failed[1]
        else:
            form = CollectForm(
                formdata=None,
                data={"amount": str(from_minor(registration.total_minor, registration.currency))},
                prefix=f"r{registration.id}",
            )
        rows.append((registration, form))
    return render_template("pay_at_door/reception.html", event=event, page=page, rows=rows), status


@bp.get("/<lang_code>/organiser/events/<slug>/at-the-door/")
@login_required
def reception(slug: str):
    return _render(_organiser_event(slug))


@bp.post("/<lang_code>/organiser/events/<slug>/at-the-door/<int:reg_id>")
@login_required
def collect(slug: str, reg_id: int):
    event = _organiser_event(slug)
    registration = registrations.get_for_event(db.session, event, reg_id)
    if registration is None:
        abort(404)
    form = CollectForm(prefix=f"r{reg_id}")
    if registration.state != RegistrationState.pending_payment:
        flash(str(payments.NotAwaitingPayment.default_message), "error")
        return _render(event, status=400)
    if not form.validate_on_submit():
        return _render(event, failed=(reg_id, form), status=400)
    try:
        amount = payments.parse_amount(form.amount.data, registration.currency)
        payment = services.collect_and_check_in(
            db.session, registration, actor=current_user, amount_minor=amount
        )
    except payments.PaymentError as exc:
        db.session.rollback()
        form.amount.errors = [*form.amount.errors, str(exc.message)]
        return _render(event, failed=(reg_id, form), status=400)
    db.session.commit()
    name = registration.person.display_name
    if payment.flag:
        flash(
            _(
                "The payment from %(name)s was recorded, but it needs your attention: %(problem)s",
                name=name,
                problem=payments.FLAG_LABELS.get(payment.flag, payment.flag),
            ),
            "error",
        )
    else:
        flash(_("%(name)s has paid and is checked in.", name=name), "success")
    return redirect(url_for(".reception", slug=slug))
