"""``portal payments reconcile``: settle payments whose provider's notification never came."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("payments")
def payments_group():
    """Payments (card payments through Stripe, bank transfers, at the door)."""


@payments_group.command("reconcile")
@with_appcontext
def reconcile_command():
    """Ask the providers about every pending payment and settle it (paid, expired or open)."""
    from portal.payments.reconcile import reconcile

    counts = reconcile(echo=click.echo)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
    click.echo(f"Reconciled: {summary}.")
