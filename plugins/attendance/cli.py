"""``portal attendance import FILE`` and ``portal attendance record --event SLUG``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.cli import event_by_slug, series_by_slug
from portal.db import db


@click.group("attendance")
def attendance_group():
    """Attendance figures per meeting."""


@attendance_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--series",
    "series_slug",
    default="study-group",
    show_default=True,
    help="The series (slug) the meetings belong to.",
)
@click.option("--dry-run", is_flag=True, help="Check and report, but save nothing.")
@with_appcontext
def import_command(file, series_slug, dry_run):
    """Import the organiser's attendance table (CSV); importing twice changes nothing."""
    from plugins.attendance.importer import ImportFileError, import_attendance, read_text

    series = series_by_slug(series_slug)
    try:
        report = import_attendance(db.session, read_text(file), series)
    except ImportFileError as exc:
        db.session.rollback()
        raise click.ClickException(f"{file}: {exc}.") from exc
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()

    click.echo(f"Read {report.rows} valid row(s) from {file}.")
    click.echo(f"Meetings created: {report.events_created}.")
    click.echo(
        f"Attendance: {report.created} created, {report.changed} changed, "
        f"{report.unchanged} unchanged."
    )
    if report.mismatched:
        click.echo("Breakdown does not add up to the participants (kept as given):")
        for m in report.mismatched:
            click.echo(
                f"  line {m.line}, meeting {m.number}: participants {m.participants}, "
                f"company + university + government/other = {m.breakdown_total}"
            )
    if report.invalid:
        click.echo(f"Invalid rows (skipped): {len(report.invalid)}")
        for row in report.invalid:
            click.echo(f"  line {row.line}: {row.reason}")
    if dry_run:
        click.echo("Dry run: nothing was saved.")


@attendance_group.command("record")
@click.option("--event", "slug", required=True)
@with_appcontext
def record_command(slug):
    """Save a meeting's figures as counted from its registrations and check-ins."""
    from plugins.attendance.services import NoFigures, record_from_registrations

    event = event_by_slug(slug)
    try:
        row, outcome = record_from_registrations(db.session, event)
    except NoFigures as exc:
        raise click.ClickException(f"{slug} has no registrations to count.") from exc
    db.session.commit()
    click.echo(
        f"{slug}: {outcome}; registered {row.registered}, participants {row.participants} "
        f"(on site {row.onsite_participants}, online {row.online_participants})."
    )
