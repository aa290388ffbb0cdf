"""Exchange meeting pages: join / leave (participant), list, CSV, reception list (organisers)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from plugins.exchange_meeting import services
from plugins.exchange_meeting.forms import ChangeForm
from plugins.exchange_meeting.models import SignupState
from portal import plugins
from portal.csvexport import csv_response
from portal.db import db, utcnow
from portal.events.models import Event
from portal.i18n import from_minor
from portal.pagination import page_number, paginate
from portal.registration import services as registrations
from portal.registration.export import person_cells, person_header
from portal.registration.services import MODE_LABELS, SECTOR_LABELS
from portal.registration.services import STATE_LABELS as REGISTRATION_STATE_LABELS
from portal.transactions import state_change

bp = Blueprint("exchange_meeting", __name__, template_folder="templates")
PER_PAGE = 50
ORGANISER = "/<lang_code>/organiser/events/<slug>/exchange-meeting"


# -- participant -----------------------------------------------------------------------------


@bp.post("/<lang_code>/my/registrations/<int:reg_id>/exchange-meeting")
@login_required
def change(reg_id: int):
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    event = registration.event
    plugins.require_enabled(event, services.PLUGIN)
    form = ChangeForm()
    if form.next.data == "event":
        back = url_for("events.event_page", slug=event.slug, _anchor="exchange-meeting")
    else:
        back = url_for("registration.my_registration", reg_id=reg_id, _anchor="exchange-meeting")
    action = request.form.get("action", "")
    if not form.validate() or action not in ("join", "leave"):
        flash(_("The form had expired. Please check your entries and send it again."), "error")
        return redirect(back)
    with state_change() as change:
        if action == "join":
            signup = services.join(db.session, registration, actor=current_user)
        else:
            services.leave(db.session, registration, actor=current_user)
            signup = None
    if not change.ok:
        return redirect(back)
    if action == "leave":
        flash(_("You have left the exchange meeting."), "success")
    elif signup is None:
        flash(
            _(
                "Noted: you will be signed up for the exchange meeting when you get a place "
                "at the meeting."
            ),
            "success",
        )
    elif signup.state == SignupState.confirmed:
        flash(_("You have a place at the exchange meeting."), "success")
    else:
        flash(
            _(
                "The exchange meeting is full, so you are on its waiting list. We will email "
                "you if a place becomes free."
            ),
            "success",
        )
    return redirect(back)


# -- organisers ------------------------------------------------------------------------------


def _organiser_event(slug: str) -> Event:
    return plugins.organiser_event(slug, services.PLUGIN)


@bp.get(ORGANISER + "/")
@login_required
def organiser_list(slug: str):
    event = _organiser_event(slug)
    state = request.args.get("state", "")
    if state not in {s.value for s in SignupState}:
        state = ""
    st = services.meeting_settings(event)
    page = paginate(db.session, services.participants(event, state), page_number(), PER_PAGE)
    counts = services.counts(db.session, event)
    return render_template(
        "exchange_meeting/list.html",
        event=event,
        st=st,
        state=state,
        page=page,
        confirmed=counts[SignupState.confirmed],
        waiting=counts[SignupState.waitlisted],
        positions=services.positions(db.session, event, [s.id for s in page.items]),
        fee_at_reception=services.fee_at_reception,
        state_labels=services.STATE_LABELS,
        registration_labels=REGISTRATION_STATE_LABELS,
        mode_labels=MODE_LABELS,
        sector_labels=SECTOR_LABELS,
        form=ChangeForm(),
    )


@bp.get(ORGANISER + "/export.csv")
@login_required
def export(slug: str):
    event = _organiser_event(slug)
    st = services.meeting_settings(event)
    signups = services.participant_rows(db.session, event)
    positions = services.positions(db.session, event, [s.id for s in signups])
    zone = ZoneInfo(event.timezone)
    rows = [
        [
            *person_header(),
            _("Registration"),
            _("Exchange meeting"),
            _("Waiting list position"),
            _("Fee at the reception"),
            _("Currency"),
            _("Signed up at"),
        ]
    ]
    for signup in signups:
        r = signup.registration
        rows.append(
            [
                *person_cells(r),
                str(REGISTRATION_STATE_LABELS[r.state]),
                str(services.STATE_LABELS[signup.state]),
                positions.get(signup.id, ""),
                str(from_minor(services.fee_at_reception(r, st), st.currency))
                if signup.state == SignupState.confirmed
                else "",
                st.currency,
                signup.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            ]
        )
    return csv_response(rows, f"{event.slug}-exchange-meeting.csv")


@bp.get(ORGANISER + "/print")
@login_required
def print_list(slug: str):
    event = _organiser_event(slug)
    st = services.meeting_settings(event)
    rows = services.roster_rows(db.session, event)
    return render_template(
        "exchange_meeting/print.html",
        event=event,
        st=st,
        rows=rows,
        fee_at_reception=services.fee_at_reception,
        sector_labels=SECTOR_LABELS,
        printed_at=utcnow(),
    )


@bp.post(ORGANISER + "/promote")
@login_required
def promote(slug: str):
    event = _organiser_event(slug)
    if ChangeForm().validate():
        promoted = services.promote_waiting(db.session, event, actor=current_user)
        db.session.commit()
        if promoted:
            flash(
                ngettext(
                    "%(num)s person moved up from the waiting list.",
                    "%(num)s people moved up from the waiting list.",
                    len(promoted),
                ),
                "success",
            )
        else:
            flash(_("There is no free place, or nobody is waiting."), "info")
    return redirect(url_for(".organiser_list", slug=slug))
