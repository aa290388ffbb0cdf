"""``portal announcements ...``: bounces reported by the mail server, sending by hand."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.db import db


@click.group("announcements")
def announcements_group():
    """The lists of the series and their announcements."""


@announcements_group.command("bounce")
@click.argument("email")
@click.option("--complaint", is_flag=True, help="The recipient marked it as spam.")
@with_appcontext
def bounce(email: str, complaint: bool):
    """Mark EMAIL as undeliverable on every list (a bounce or a complaint)."""
    from portal.announcements.subscriptions import mark_undeliverable

    changed = mark_undeliverable(db.session, email, "complaint" if complaint else "bounce")
    db.session.commit()
    click.echo(f"{changed} subscription(s) marked undeliverable")


@announcements_group.command("send")
@click.option("--limit", type=int, default=None, help="Send at most this many.")
@with_appcontext
def send(limit: int | None):
    """Create the deliveries of announcements that are due and send them (as the job does)."""
    from portal.announcements.sending import prepare_due, send_due

    prepared = prepare_due(db.session)
    report = send_due(db.session, limit=limit)
    click.echo(
        f"prepared {len(prepared)}, sent {report.sent}, refused {report.failed}, "
        f"uncertain {report.uncertain}, finished {len(report.finished)}"
    )
