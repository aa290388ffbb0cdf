"""The reception's page: registrations waiting for payment, "paid and checked in"."""

from __future__ import annotations

from flask import Blueprint, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from plugins.pay_at_door import services
from portal.db import db
from portal.payments import offline

bp = Blueprint("pay_at_door", __name__, template_folder="templates")
PER_PAGE = 100


class CollectForm(FlaskForm):
    amount = StringField(_l("Amount received"), [InputRequired(_l("Enter the amount received."))])


def _blank_form(registration) -> CollectForm:
    data = {"amount": offline.amount_text(registration)}
    return CollectForm(formdata=None, data=data, prefix=f"r{registration.id}")


desk = offline.Desk(
    plugin=services.PLUGIN,
    template="pay_at_door/reception.html",
    per_page=PER_PAGE,
    awaiting=services.awaiting,
    blank_form=_blank_form,
)


@bp.get("/<lang_code>/organiser/events/<slug>/at-the-door/")
@login_required
def reception(slug: str):
    return desk.render(desk.event(slug))


@bp.post("/<lang_code>/organiser/events/<slug>/at-the-door/<int:reg_id>")
@login_required
def collect(slug: str, reg_id: int):
    return desk.record(
        desk.event(slug),
        reg_id,
        CollectForm(prefix=f"r{reg_id}"),
        lambda registration, amount: services.collect_and_check_in(
            db.session, registration, actor=current_user, amount_minor=amount
        ),
        attention=_l(
            "The payment from %(name)s was recorded, but it needs your attention: %(problem)s"
        ),
        done=_l("%(name)s has paid and is checked in."),
        back=url_for(".reception", slug=slug),
    )
