from flask import Blueprint, Response, abort, url_for
from flask_login import current_user

from portal import plugins
from portal.db import db
from portal.events import services
from portal.i18n import current_language

bp = Blueprint("calendar", __name__, url_prefix="/<lang_code>/events/<slug>")


@bp.get("/calendar.ics")
def ics(slug: str):
    event = services.event_with_programme(db.session, slug)
    if event is None or not services.can_view(event, current_user):
        abort(404)
    plugins.require_enabled(event, "calendar")
    from plugins.calendar.ics import event_calendar  # icalendar: loaded on first use (memory)

    url = url_for("events.event_page", slug=slug, _external=True)
    body = event_calendar(event, url, current_language())
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{slug}.ics"'},
    )
