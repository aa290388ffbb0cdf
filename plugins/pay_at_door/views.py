"""The reception's page: registrations waiting for payment, "paid and checked in"."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from plugins.pay_at_door import services
from portal.db import db
from portal.events.models import Event
from portal.payments import offline
from portal.registration import services as registrations
from portal.registration.models import RegistrationState

bp = Blueprint("pay_at_door", __name__, template_folder="templates")
PER_PAGE = 100


class CollectForm(FlaskForm):
    amount = StringField(_l("Amount received"), [InputRequired(_l("Enter the amount received."))])


def _organiser_event(slug: str) -> Event:
    return offline.organiser_event(slug, services.PLUGIN)


def _blank_form(registration) -> CollectForm:
    data = {"amount": offline.amount_text(registration)}
    return CollectForm(formdata=None, data=data, prefix=f"r{registration.id}")


def _render(event, failed=None, status=200):
    page, rows = offline.rows(event, services.awaiting(event), PER_PAGE, _blank_form, failed)
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
        flash(offline.not_waiting_message(), "error")
        return _render(event, status=400)
    if not form.validate_on_submit():
        return _render(event, failed=(reg_id, form), status=400)
    payment = offline.record(
        form,
        registration,
        lambda amount: services.collect_and_check_in(
            db.session, registration, actor=current_user, amount_minor=amount
        ),
    )
    if payment is None:
        return _render(event, failed=(reg_id, form), status=400)
    name = registration.person.display_name
    offline.flash_recorded(
        payment,
        attention=lambda problem: _(
            "The payment from %(name)s was recorded, but it needs your attention: %(problem)s",
            name=name,
            problem=problem,
        ),
        done=_("%(name)s has paid and is checked in.", name=name),
    )
    return redirect(url_for(".reception", slug=slug))
