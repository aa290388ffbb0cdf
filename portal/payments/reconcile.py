"""``reconcile``: settle payments whose provider's notification never came.

A plain function, so that the CLI (``portal payments reconcile``) and a scheduler (a Celery
beat task) call the same thing: ``portal.payments.reconcile.reconcile()``. It needs an app
context and commits after each payment, so a failure halfway keeps what was settled.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from portal.payments import providers
from portal.payments.models import Payment, PaymentState
from portal.payments.services import PaymentError


def reconcile_candidates(session: Session) -> list[int]:
    """Pending payments, oldest first (the partial index ``ix_payments_pending``); the
    providers that can check them (``checks_pending``) are asked by ``reconcile``."""
    return list(
        session.scalars(
            sa.select(Payment.id).where(Payment.state == PaymentState.pending).order_by(Payment.id)
        )
    )


def reconcile(session: Session | None = None, *, echo=None) -> dict[str, int]:
    """Ask each provider that can (``checks_pending``) about every pending payment of its
    method and settle it; then run each provider's housekeeping (e.g. expire attempts that
    never reached Stripe). Returns the number of payments per outcome."""
    if session is None:
        from portal.db import db

        session = db.session
    counts: dict[str, int] = {}
    registry = providers.all_providers()
    ids = reconcile_candidates(session)
    session.commit()
    for payment_id in ids:
        payment = session.get(Payment, payment_id)
        provider = registry.get(payment.method)
        if provider is None or not provider.checks_pending:
            continue
        if provider.unavailable_reason(payment.event) is not None:
            counts["provider_not_set_up"] = counts.get("provider_not_set_up", 0) + 1
            continue
        try:
            outcome = provider.check(session, payment)
        except PaymentError as exc:
            session.rollback()
            current_app.logger.warning("reconcile: payment %s: %s", payment_id, exc)
            outcome = "provider_error"
        session.commit()
        if outcome is None:
            continue  # nothing to ask the provider about yet
        counts[outcome] = counts.get(outcome, 0) + 1
        if echo is not None:
            echo(f"payment {payment_id}: {outcome}")
    for provider in registry.values():
        cleaned = provider.housekeeping(session)
        session.commit()
        if cleaned:
            counts["never_opened"] = counts.get("never_opened", 0) + cleaned
    return counts
