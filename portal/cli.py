"""The `portal` command: Flask's own commands plus db, demo, plugins, outbox and translations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from portal.config import MIGRATIONS, ROOT, TRANSLATIONS  # noqa: F401  (ROOT: pybabel's cwd)
from portal.db import db


def alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url", (url or current_app.config["DATABASE_URL"]).replace("%", "%%")
    )
    return cfg


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    if (url or current_app.config["DATABASE_URL"]).startswith("sqlite:///"):
        Path((url or current_app.config["DATABASE_URL"])[len("sqlite:///") :]).parent.mkdir(
            parents=True, exist_ok=True
        )
    command.upgrade(alembic_config(url), revision)


@click.group("db")
def db_group():
    """Database schema (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision):
    """Bring the database up to date."""
    upgrade_database(revision=revision)
    click.echo(f"Database is at {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision):
    """Step the schema back to REVISION (a rollback; take a backup first)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)
    click.echo(f"Database is at {revision}.")


@db_group.command("current")
@with_appcontext
def db_current():
    """Show the revision the database is at."""
    from alembic import command

    command.current(alembic_config())


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message):
    """Write a new migration from the difference between models and database."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=True)


@click.group("demo")
def demo_group():
    """Demo data."""


@demo_group.command("load")
@with_appcontext
def demo_load():
    """Load the demo data (running it twice changes nothing) and print the demo accounts."""
    from portal.demo import load_demo

    accounts = load_demo(db.session)
    db.session.commit()
    click.echo("Demo accounts (email / password / role):")
    for email, password, role in accounts:
        click.echo(f"  {email} / {password} / {role}")


@click.group("plugins")
def plugins_group():
    """Plugins per event, and series plugins (membership, archive, attendance) per series."""


def event_by_slug(slug: str):
    """The event with this slug, for a command's ``--event SLUG`` (plugins' commands too)."""
    from portal.events.models import Event

    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None:
        raise click.ClickException(f"No event with the slug {slug!r}.")
    return event


def series_by_slug(slug: str):
    """The series with this slug, for a command's ``--series SLUG`` (plugins' commands too)."""
    from portal.events.models import Series

    series = db.session.scalar(sa.select(Series).where(Series.slug == slug))
    if series is None:
        raise click.ClickException(f"No series with the slug {slug!r}.")
    return series


def _where(event_slug, series_slug):
    if bool(event_slug) == bool(series_slug):
        raise click.UsageError("Give --event SLUG or --series SLUG.")
    return event_by_slug(event_slug) if event_slug else series_by_slug(series_slug)


@plugins_group.command("list")
@click.option("--event", "slug", help="Show which plugins are on for this event.")
@click.option("--series", "series_slug", help="Show which series plugins are on for a series.")
@with_appcontext
def plugins_list(slug, series_slug):
    """List installed plugins with their scope (and whether each is on for an event/series)."""
    from portal import plugins

    if slug and series_slug:
        raise click.UsageError("Give --event or --series, not both.")
    if slug:
        enabled = plugins.enabled_names(event_by_slug(slug))
    elif series_slug:
        series = series_by_slug(series_slug)
        enabled = {n for n in plugins.series_plugin_names() if plugins.series_enabled(series, n)}
    else:
        enabled = set()
    for name, module in plugins.installed().items():
        state = ("on" if name in enabled else "off") if (slug or series_slug) else ""
        scope = plugins.scope(name)
        click.echo(f"{name:20} {scope:6} {state:4} {module.description}".rstrip())


def _switch(plugin, event_slug, series_slug, enabled: bool) -> None:
    from portal import plugins
    from portal.organiser.services import set_plugin_enabled

    where = _where(event_slug, series_slug)
    if plugin in plugins.installed() and event_slug and plugins.scope(plugin) == plugins.SERIES:
        raise click.ClickException(
            f"{plugin} belongs to a whole series: use --series {where.series.slug}."
        )
    try:
        set_plugin_enabled(db.session, where, plugin, enabled, actor=None)
    except KeyError as exc:
        raise click.ClickException(f"No plugin named {plugin!r}.") from exc
    except plugins.ScopeError as exc:
        raise click.ClickException(f"{plugin} is switched per event: use --event SLUG.") from exc
    db.session.commit()
    state = "on" if enabled else "off"
    click.echo(f"{plugin} is {state} for {event_slug or series_slug}.")


@plugins_group.command("enable")
@click.argument("plugin")
@click.option("--event", "event_slug", help="The event (a plugin switched per event).")
@click.option("--series", "series_slug", help="The series (membership, archive, attendance).")
@with_appcontext
def plugins_enable(plugin, event_slug, series_slug):
    """Switch a plugin on for an event, or a series plugin for a series."""
    _switch(plugin, event_slug, series_slug, True)


@plugins_group.command("disable")
@click.argument("plugin")
@click.option("--event", "event_slug", help="The event (a plugin switched per event).")
@click.option("--series", "series_slug", help="The series (membership, archive, attendance).")
@with_appcontext
def plugins_disable(plugin, event_slug, series_slug):
    """Switch a plugin off for an event, or a series plugin for a series."""
    _switch(plugin, event_slug, series_slug, False)


@click.group("outbox")
def outbox_group():
    """Outgoing email."""


@outbox_group.command("send")
@click.option("--limit", default=100, show_default=True)
@with_appcontext
def outbox_send(limit):
    """Deliver due emails over SMTP (failed ones are retried with back-off).

    Safe to run several at once (each mail is claimed first). Exits 1 when a mail could not
    be delivered this round, so cron or a monitor notices."""
    from portal.mail.services import send_due

    sent, failed = send_due(db.session, limit=limit)
    click.echo(f"sent {sent}, postponed {failed}")
    if failed:
        raise click.ClickException(f"{failed} email(s) could not be delivered this round.")


@outbox_group.command("status")
@with_appcontext
def outbox_status():
    """Backlog for monitoring; exits 1 when any mail is undelivered (given up)."""
    from portal.mail.services import outbox_counts

    counts = outbox_counts(db.session)
    click.echo(
        f"waiting {counts['waiting']}, due {counts['due']}, undelivered {counts['undelivered']}"
    )
    if counts["undelivered"]:
        raise click.ClickException(
            f"{counts['undelivered']} undelivered email(s); `portal outbox requeue` sends them again."
        )


@outbox_group.command("requeue")
@click.argument("email_ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Every undelivered email.")
@with_appcontext
def outbox_requeue(email_ids, everything):
    """Send undelivered emails again (the given ids, or --all), with the same Message-ID."""
    from portal.mail.services import requeue

    if not email_ids and not everything:
        raise click.UsageError("Give email ids or --all.")
    count = requeue(db.session, None if everything else email_ids)
    db.session.commit()
    click.echo(f"requeued {count}")


@click.group("translations")
def translations_group():
    """The Japanese catalogue (English is the source language)."""


def _pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=ROOT)


@translations_group.command("extract")
def translations_extract():
    """Extract messages and update translations/ja."""
    from portal.translations_check import EXTRACT_OPTIONS

    _pybabel(
        "extract",
        *EXTRACT_OPTIONS,
        "--sort-output",
        "--width",
        "100",  # the catalogue's wrapping: a re-run changes only new entries
        "-o",
        "translations/messages.pot",
        ".",
    )
    _pybabel(
        "update",
        "-i",
        "translations/messages.pot",
        "-d",
        "translations",
        "-l",
        "ja",
        "--no-fuzzy-matching",
        "--ignore-obsolete",
        "--width",
        "100",
    )


@translations_group.command("compile")
def translations_compile():
    """Compile the catalogue (.po → .mo)."""
    _pybabel("compile", "-d", "translations", "--use-fuzzy")


@translations_group.command("check")
def translations_check():
    """Fail when any message lacks a Japanese translation or is fuzzy."""
    from portal.translations_check import problems

    found = problems()
    for problem in found:
        click.echo(problem)
    if found:
        raise click.ClickException(f"{len(found)} problem(s) in the Japanese catalogue.")
    click.echo("Japanese catalogue complete.")


def register(app: Flask) -> None:
    for group in (db_group, demo_group, plugins_group, outbox_group, translations_group):
        app.cli.add_command(group)
    from portal.tasks.cli import jobs_group, tasks_group

    app.cli.add_command(jobs_group)
    app.cli.add_command(tasks_group)
    # Accounts: `portal users create-admin EMAIL` (the first administrator).
    from portal.accounts.cli import users_group

    app.cli.add_command(users_group)
    # Announcements: `portal announcements bounce EMAIL`, `portal announcements send`.
    from portal.announcements.cli import announcements_group

    app.cli.add_command(announcements_group)


# The app the `portal` command runs, named like a WSGI server names it: the app registers
# this module's commands (``register``), so this module does not import the app's code.
APP = ("portal.app", "create_app()")


def _create_app():
    from flask.cli import locate_app

    return locate_app(*APP)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main():
    """Manage the portal."""


if __name__ == "__main__":  # `python -m portal.cli` (used by `portal tasks dev`)
    main()
