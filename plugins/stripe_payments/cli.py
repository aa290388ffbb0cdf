"""``portal payments reconcile``: settle card payments whose webhook never arrived."""

from __future__ import annotations

import click
import stripe
from flask.cli import with_appcontext

from plugins.stripe_payments import services
from plugins.stripe_payments.models import Payment
from portal.db import db


@click.group("payments")
def payments_group():
    """Payments (card payments through Stripe, bank transfers)."""


def reconcile_one(session, payment_id: int) -> str:
    """Ask Stripe about one pending attempt (no lock held meanwhile) and settle it.

    Paid sessions are confirmed and expired ones expired, through the same functions the
    webhook uses; an open session the registration no longer waits for is expired at Stripe.
    """
    payment = session.get(Payment, payment_id)
    session_id = payment.provider_session_id
    superseded = payment.superseded_at is not None
    session.commit()
    try:
        obj = services.retrieve_session(session_id)
        if obj.get("status") == "open" and superseded:
            obj = services.stripe_client().v1.checkout.sessions.expire(session_id).to_dict()
    except stripe.StripeError as exc:
        services.note_provider_error(session, payment_id, exc)
        session.commit()
        return "provider_error"
    outcome = services.settle_from_session(session, payment_id, obj, source="reconcile")
    session.commit()
    return outcome


def reconcile_all(session, echo=lambda line: None) -> dict[str, int]:
    """Settle every pending card payment; returns counts per outcome (the scheduled job)."""
    counts: dict[str, int] = {}
    for payment_id in services.reconcile_candidates(session):
        outcome = reconcile_one(session, payment_id)
        counts[outcome] = counts.get(outcome, 0) + 1
        echo(f"payment {payment_id}: {outcome}")
    abandoned = services.expire_abandoned_attempts(session)
    session.commit()
    if abandoned:
        counts["never_opened"] = abandoned
    return counts


@payments_group.command("reconcile")
@with_appcontext
def reconcile():
    """Ask Stripe about every pending card payment and settle it (paid, expired or open)."""
    if services.card_unavailable_reason() is not None:
        raise click.ClickException(services.card_unavailable_reason())
    counts = reconcile_all(db.session, echo=click.echo)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
    click.echo(f"Reconciled: {summary}.")
