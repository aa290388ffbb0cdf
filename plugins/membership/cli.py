"""``portal membership remind``: renewal reminders (更新のご案内) before the new fiscal year."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext

from portal.db import db


@click.group("membership")
def membership_group():
    """Corporate membership."""


@membership_group.command("remind")
@click.option("--series", "series_slug", help="Only this series (default: every series).")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Take this date as today (YYYY-MM-DD); default: today in each series' time zone.",
)
@with_appcontext
def remind(series_slug, today):
    """Queue renewal reminders to the contacts of this year's member companies that have no
    membership for the next fiscal year yet (once per company and year)."""
    from plugins.membership.services import queue_renewal_reminders

    day: date | None = today.date() if today else None
    companies = queue_renewal_reminders(db.session, today=day, series_slug=series_slug)
    db.session.commit()
    for company in companies:
        click.echo(
            f"reminded {company.series.slug}: {company.name.get('ja')} <{company.contact_email}>"
        )
    click.echo(f"{len(companies)} reminder(s) queued.")
