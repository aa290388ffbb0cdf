"""``portal webinar remind``: the reminder email of the day before."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("webinar")
def webinar_group():
    """Webinar: reminders."""


@webinar_group.command("remind")
@with_appcontext
def remind_command():
    """Queue the reminder email for events starting in 24 to 48 hours (once per person)."""
    from plugins.webinar import services
    from portal.db import db

    queued = services.remind(db.session)
    db.session.commit()
    click.echo(f"queued {len(queued)} reminders")
