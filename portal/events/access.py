"""Who reaches an event's organiser pages: the organisers of its series, nobody else (404)."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from portal.db import db
from portal.events.models import Event
from portal.events.services import event_by_slug


def organised_event_or_404(slug: str) -> Event:
    """The event at ``slug`` if the signed-in person organises its series; otherwise 404 (the
    same answer as for an event that does not exist). A plugin's pages use
    ``portal.plugins.organiser_event``, which also wants the plugin on."""
    event = event_by_slug(db.session, slug)
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    return event
