"""Pages for tickets, check-in and badges.

Participant: ``/<lang>/my/registrations/<id>/ticket.pdf``.
Organiser (``/<lang>/organiser/events/<slug>/check-in/``): the phone scanner (camera with
the vendored jsQR decoder in ``static/vendor/jsqr``, typed search as the fallback), its JSON
endpoints, the live counts, ticket revocation and the name badges PDF.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup

from portal.db import db
from portal.events import services as event_services
from portal.events.models import Event
from portal.i18n import LANGUAGES, current_language, format_person_name
from portal.params import int_or_none
from portal.registration import services as registrations
from portal.registration.forms import ConfirmForm
from portal.registration.models import Registration
from portal.tickets import services

bp = Blueprint("tickets", __name__, url_prefix="/<lang_code>")
admin = Blueprint(
    "checkin", __name__, url_prefix="/<lang_code>/organiser/events/<slug>", static_folder=None
)

ROLE_LABELS = {
    "speaker": _l("Speaker"),
    "organiser": _l("Organising staff"),
    "member": _l("Member"),
}


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# -- participant -----------------------------------------------------------------------------


def _own_registration(reg_id: int) -> Registration:
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    return registration


@bp.get("/my/registrations/<int:reg_id>/ticket.pdf")
@login_required
def ticket_pdf(reg_id: int):
    from portal.tickets import pdf  # reportlab and segno load on first use

    registration = _own_registration(reg_id)
    ticket = services.current_ticket(db.session, registration)
    if ticket is None or registration.state not in services.TICKET_STATES:
        abort(404)
    language = current_language()
    content = pdf.ticket_pdf(
        registration,
        ticket.token,
        language,
        services.has_reception_place(db.session, registration),
    )
    response = _no_store(
        db_response(content, "application/pdf", f"ticket-{registration.event.slug}.pdf")
    )
    return response


def db_response(content: bytes, mimetype: str, filename: str, inline: bool = True):
    from flask import Response

    disposition = "inline" if inline else "attachment"
    return Response(
        content,
        mimetype=mimetype,
        headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
    )


# -- organiser -------------------------------------------------------------------------------


def _organiser_event(slug: str) -> Event:
    event = event_services.event_by_slug(db.session, slug)
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    return event


def _point() -> str:
    point = (request.values.get("point") or services.EVENT).strip()
    return point if point in services.POINTS else services.EVENT


@admin.get("/check-in/")
@login_required
def scanner(slug: str):
    event = _organiser_event(slug)
    point = _point()
    if point == services.RECEPTION and not services.reception_enabled(event):
        abort(404)
    return render_template(
        "tickets/scanner.html",
        event=event,
        point=point,
        reception=services.reception_enabled(event),
        counts=services.checkin_counts(db.session, event),
        mode_labels=registrations.MODE_LABELS,
    )


def _json_result(event: Event, result: services.ScanResult):
    body = result.as_json(event)
    body["counts"] = services.checkin_counts(db.session, event).as_json()
    return _no_store(jsonify(body))


@admin.post("/check-in/scan")
@login_required
def scan(slug: str):
    event = _organiser_event(slug)
    token = (request.form.get("token") or "").strip()[:500]
    result = services.scan(db.session, event, token, actor=current_user, point=_point())
    db.session.commit()
    return _json_result(event, result)


@admin.post("/check-in/registrations/<int:reg_id>")
@login_required
def check_in_registration(slug: str, reg_id: int):
    event = _organiser_event(slug)
    registration = registrations.get_for_event(db.session, event, reg_id)
    if registration is None:
        abort(404)
    result = services.check_in(db.session, event, registration, actor=current_user, point=_point())
    db.session.commit()
    return _json_result(event, result)


@admin.get("/check-in/search")
@login_required
def search(slug: str):
    event = _organiser_event(slug)
    q = request.args.get("q", "").strip()[:100]
    point = _point()
    found = services.search(db.session, event, q)
    checked = services.checked_in_at_point(db.session, found, point)
    return _no_store(
        jsonify(
            {
                "results": [
                    {
                        "id": r.id,
                        "name": format_person_name(r.person),
                        "kana": f"{r.person.family_name_kana} {r.person.given_name_kana}".strip(),
                        "affiliation": r.person.affiliation,
                        "state": str(registrations.STATE_LABELS[r.state]),
                        "mode": str(registrations.MODE_LABELS[r.attendance_mode]),
                        "checked_in": r.id in checked,
                    }
                    for r in found
                ]
            }
        )
    )


@admin.get("/check-in/counts")
@login_required
def counts(slug: str):
    event = _organiser_event(slug)
    return _no_store(jsonify(services.checkin_counts(db.session, event).as_json()))


@admin.post("/registrations/<int:reg_id>/ticket/revoke")
@login_required
def revoke(slug: str, reg_id: int):
    event = _organiser_event(slug)
    registration = registrations.get_for_event(db.session, event, reg_id)
    if registration is None:
        abort(404)
    if ConfirmForm().validate():
        services.revoke_ticket(db.session, registration, actor=current_user)
        db.session.commit()
        flash(_("The ticket was revoked; a new one was issued."), "success")
    return redirect(url_for("registration_admin.detail", slug=slug, reg_id=reg_id))


@admin.get("/badges/")
@login_required
def badges(slug: str):
    from portal.tickets import pdf  # reportlab and segno load on first use

    event = _organiser_event(slug)
    rows = services.badge_rows(db.session, event)
    return render_template(
        "tickets/badges.html",
        event=event,
        rows=rows,
        roles=services.badge_roles(db.session, event, rows),
        role_labels=ROLE_LABELS,
        layouts=pdf.LAYOUTS,
        default_layout=pdf.DEFAULT_LAYOUT,
    )


@admin.get("/badges.pdf")
@login_required
def badges_pdf(slug: str):
    from portal.tickets import pdf  # reportlab and segno load on first use

    event = _organiser_event(slug)
    ids = None
    if request.args.getlist("r"):
        ids = [int(v) for v in request.args.getlist("r") if int_or_none(v) is not None]
    layout = request.args.get("layout", pdf.DEFAULT_LAYOUT)
    if layout not in pdf.LAYOUTS:
        abort(400)
    language = request.args.get("language", "auto")
    with_qr = request.args.get("qr") == "1"
    rows = services.badge_rows(db.session, event, ids)
    roles = services.badge_roles(db.session, event, rows)
    tickets = services.tickets_for(db.session, rows) if with_qr else {}
    items = []
    for r in rows:
        lang = language if language in LANGUAGES else _badge_language(r.person)
        from flask_babel import force_locale

        with force_locale(lang):
            role = str(ROLE_LABELS[roles[r.id]]) if roles.get(r.id) else ""
        ticket = tickets.get(r.id)
        items.append(pdf.badge_for(r.person, role, lang, ticket.token if ticket else None))
    content = pdf.badges_pdf(items, layout, title=_("Name badges"))
    return _no_store(db_response(content, "application/pdf", f"badges-{event.slug}.pdf"))


def _badge_language(person) -> str:
    from portal.i18n import _is_japanese_script

    native = f"{person.family_name}{person.given_name}"
    return "ja" if _is_japanese_script(native) else "en"


# -- template helpers ------------------------------------------------------------------------


def _template_tickets_for(items):
    return services.tickets_for(db.session, items)


def _template_qr_svg(token: str, scale: int = 6) -> Markup:
    from portal.tickets import pdf  # reportlab and segno load on first use

    # segno's SVG: only <svg> and <path> with fixed attributes, the token is not in it.
    return Markup(pdf.qr_svg(token, scale))


def _template_checkin_counts(event):
    return services.checkin_counts(db.session, event)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(admin)
    app.jinja_env.globals.update(
        tickets_for=_template_tickets_for,
        ticket_qr_svg=_template_qr_svg,
        checkin_counts=_template_checkin_counts,
    )
