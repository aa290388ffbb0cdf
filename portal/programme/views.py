"""The timetable (public) with its PDF, .ics and JSON, and the organiser's one-page builder."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from portal.db import db
from portal.events import services as event_services
from portal.events.models import Event, Talk
from portal.i18n import BilingualText, current_language
from portal.localtime import parse_local
from portal.pagecache import cached_for_visitors, depends_on
from portal.params import int_or_none
from portal.programme import services
from portal.programme.models import ItemKind, ProgrammeItem
from portal.transactions import state_change

bp = Blueprint("programme", __name__, url_prefix="/<lang_code>/events/<slug>/programme")
admin = Blueprint(
    "programme_admin", __name__, url_prefix="/<lang_code>/organiser/events/<slug>/programme"
)


# -- public ----------------------------------------------------------------------------------


def _public_event(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None or not event_services.can_view(event, current_user):
        abort(404)
    return event


def _event_url(event: Event) -> str:
    base = current_app.config.get("BASE_URL", "").rstrip("/")
    return base + url_for("events.event_page", slug=event.slug)


@bp.get("/")
@cached_for_visitors
def timetable(slug: str):
    event = _public_event(slug)
    depends_on(f"event:{event.id}")  # programme items: the event's own version
    table = services.timetable(db.session, event)
    days = table.days
    chosen_day = request.args.get("day", "")
    if len(days) > 1:
        shown = [d for d in days if d.date.isoformat() == chosen_day] or days[:1]
    else:
        shown = days
    room = request.args.get("room", "")
    if room and room not in table.rooms:
        room = ""
    return render_template(
        "programme/timetable.html",
        event=event,
        table=table,
        days=days,
        shown=shown,
        chosen_day=shown[0].date.isoformat() if shown and len(days) > 1 else "",
        room=room,
        kind_labels=services.KIND_LABELS,
    )


@bp.get("/programme.json")
def schedule_json(slug: str):
    event = _public_event(slug)
    table = services.timetable(db.session, event)
    base = current_app.config.get("BASE_URL", "").rstrip("/")
    response = jsonify(services.frab_json(table, current_language(), base, _event_url(event)))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/programme.ics")
def schedule_ics(slug: str):
    event = _public_event(slug)
    table = services.timetable(db.session, event)
    content = services.ics(table, current_language(), _event_url(event))
    return Response(
        content,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{event.slug}-programme.ics"'},
    )


@bp.get("/programme.pdf")
def schedule_pdf(slug: str):
    event = _public_event(slug)
    table = services.timetable(db.session, event)
    from portal.programme import pdf  # reportlab: loaded on first use (worker memory)

    content = pdf.programme_pdf(table)
    return Response(
        content,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{event.slug}-programme.pdf"'},
    )


# -- organiser -------------------------------------------------------------------------------


class ButtonForm(FlaskForm):
    """CSRF only."""


def _organiser_event(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    return event


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _parse_local(text: str | None, tz: str) -> datetime | None:
    value = parse_local(text, tz)
    if value is None and (text or "").strip():
        raise services.ProgrammeError(_("Give the date and time as YYYY-MM-DD HH:MM."))
    return value


def _render_builder(event: Event, status: int = 200, values: dict | None = None):
    table = services.timetable(db.session, event)
    lang = current_language()
    found = services.clashes(table, lang)
    clash_items = {i for c in found for i in c.item_ids}
    clash_talks = {t for c in found for t in c.talk_ids}
    return (
        render_template(
            "programme/builder.html",
            event=event,
            table=table,
            clashes=found,
            clash_items=clash_items,
            clash_talks=clash_talks,
            chairs=services.chair_candidates(db.session, event),
            kind_labels=services.KIND_LABELS,
            kinds=list(ItemKind),
            local=lambda v: _local(v, event.timezone),
            values=values or {},
            form=ButtonForm(),
        ),
        status,
    )


@admin.get("/")
@login_required
def builder(slug: str):
    return _render_builder(_organiser_event(slug))


def _item(event: Event, item_id: int) -> ProgrammeItem:
    item = db.session.get(ProgrammeItem, item_id)
    if item is None or item.event_id != event.id:
        abort(404)
    return item


def _talk(event: Event, talk_id) -> Talk:
    talk = db.session.get(Talk, int(talk_id)) if int_or_none(talk_id) is not None else None
    if talk is None or talk.event_id != event.id:
        abort(404)
    return talk


@admin.post("/items/new", defaults={"item_id": None})
@admin.post("/items/<int:item_id>")
@login_required
def save_item(slug: str, item_id: int | None):
    event = _organiser_event(slug)
    item = _item(event, item_id) if item_id else None
    if not ButtonForm().validate():
        abort(400)
    form = request.form
    chair = None
    chair_id = int_or_none(form.get("chair", ""))
    if chair_id is not None:
        # Only a speaker of the event or a registered participant can chair.
        candidates = services.chair_candidates(db.session, event)
        chair = next((p for p in candidates if p.id == chair_id), None)
    with state_change(success=_("The programme was saved.")) as change:
        services.save_item(
            db.session,
            event,
            item,
            kind=form.get("kind", ""),
            title=BilingualText(
                ja=form.get("title_ja", "").strip()[:300], en=form.get("title_en", "").strip()[:300]
            ),
            room=form.get("room", ""),
            chair=chair,
            starts_at=_parse_local(form.get("starts_at"), event.timezone),
            ends_at=_parse_local(form.get("ends_at"), event.timezone),
            actor=current_user,
        )
    if not change.ok:  # the message is flashed; the builder again with what was entered
        return _render_builder(event, 400, {"item": item_id or "new", **form.to_dict()})
    return redirect(url_for(".builder", slug=slug))


@admin.post("/items/<int:item_id>/delete")
@login_required
def delete_item(slug: str, item_id: int):
    event = _organiser_event(slug)
    item = _item(event, item_id)
    if not ButtonForm().validate():
        abort(400)
    services.delete_item(db.session, event, item, actor=current_user)
    db.session.commit()
    flash(_("The item was removed; its talks are back among the talks to place."), "success")
    return redirect(url_for(".builder", slug=slug))


@admin.post("/talks/<int:talk_id>")
@login_required
def place_talk(slug: str, talk_id: int):
    event = _organiser_event(slug)
    talk = _talk(event, talk_id)
    if not ButtonForm().validate():
        abort(400)
    form = request.form
    with state_change(success=_("The programme was saved.")) as change:
        if form.get("action") == "unplace":
            services.unplace_talk(db.session, event, talk, actor=current_user)
        else:
            item_id = form.get("item", "")
            if int_or_none(item_id) is None:
                raise services.ProgrammeError(_("Choose a session."), "item")
            item = _item(event, int(item_id))
            services.place_talk(
                db.session,
                event,
                talk,
                item,
                starts_at=_parse_local(form.get("starts_at"), event.timezone),
                ends_at=_parse_local(form.get("ends_at"), event.timezone),
                actor=current_user,
            )
    if not change.ok:
        return _render_builder(event, 400, {"talk": talk_id, **form.to_dict()})
    return redirect(url_for(".builder", slug=slug) + f"#talk-{talk.id}")


@admin.post("/start")
@login_required
def start(slug: str):
    event = _organiser_event(slug)
    if not ButtonForm().validate():
        abort(400)
    with state_change(success=_("The programme was saved.")) as change:
        services.start_from_talks(db.session, event, actor=current_user)
    if not change.ok:
        return _render_builder(event, 400)
    return redirect(url_for(".builder", slug=slug))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(admin)
