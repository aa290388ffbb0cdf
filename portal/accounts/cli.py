"""``portal users create-admin EMAIL``: the first administrator of a new installation."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.db import db


@click.group("users")
def users_group():
    """Accounts."""


@users_group.command("create-admin")
@click.argument("email")
@click.option(
    "--send-link",
    is_flag=True,
    help="Do not ask for a password; email a link to set one (run `portal outbox send`).",
)
@click.option(
    "--language",
    type=click.Choice(["ja", "en"]),
    default="ja",
    show_default=True,
    help="Language of the account (and of the email with the link).",
)
@with_appcontext
def create_admin(email, send_link, language):
    """Create an administrator account for EMAIL (or make an existing account one)."""
    from portal.accounts.services import AccountError, create_administrator

    password = None
    if not send_link:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user, created = create_administrator(db.session, email, password, language=language)
    except AccountError as exc:
        db.session.rollback()
        if exc.code == "password_length":
            raise click.ClickException("The password must have 10 to 1000 characters.") from exc
        raise click.ClickException(f"{email!r} is not an email address.") from exc
    db.session.commit()
    what = "Created the administrator" if created else "Made the existing account an administrator:"
    click.echo(f"{what} {user.email}.")
    if send_link:
        click.echo("A link to set the password is in the outbox; `portal outbox send` delivers it.")
