"""Webinar pages for organisers: import the attendance report, see the online attendance."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from plugins.webinar import services
from plugins.webinar.forms import ReportForm
from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.pagination import page_number, paginate
from portal.registration.services import SECTOR_LABELS
from portal.registration.services import STATE_LABELS as REGISTRATION_STATE_LABELS
from portal.transactions import state_change

bp = Blueprint(
    "webinar",
    __name__,
    url_prefix="/<lang_code>/organiser/events/<slug>/webinar",
    template_folder="templates",
)
PER_PAGE = 50

REASONS = {
    "no_registration": _l("No registration with this email address"),
    "onsite": _l("Registered to attend on site"),
    "not_confirmed": _l("The registration is not confirmed"),
    "no_email": _l("No email address in this row"),
    "did_not_attend": _l("Did not join the webinar"),
}


def _organiser_event(slug: str) -> Event:
    return plugins.organiser_event(slug, services.PLUGIN)


@bp.route("/", methods=["GET", "POST"])
@login_required
def attendance(slug: str):
    """参加記録の取り込み: upload the report; the recorded online attendance below."""
    event = _organiser_event(slug)
    form = ReportForm()
    result = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            data = form.report.data.read(services.MAX_REPORT_BYTES + 1)
            with state_change(form, field="report") as change:
                report = services.parse_report(data)
                result = services.import_report(db.session, event, report, actor=current_user)
            status = change.status
    page = paginate(db.session, services.attendance_list(event), page_number(), PER_PAGE)
    return (
        render_template(
            "webinar/attendance.html",
            event=event,
            form=form,
            result=result,
            page=page,
            figures=services.figures(db.session, event),
            reasons=REASONS,
            registration_labels=REGISTRATION_STATE_LABELS,
            sector_labels=SECTOR_LABELS,
        ),
        status,
    )
