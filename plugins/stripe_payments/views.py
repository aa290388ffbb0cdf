"""Card payment pages: pay by card, the return and cancel pages, and Stripe's webhook.
Thin: parse, call one service, render. Receipts and the payments list are ``portal.payments``."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.stripe_payments import forms, services
from plugins.stripe_payments import sdk as stripe
from portal import plugins
from portal.db import db
from portal.extensions import csrf
from portal.i18n import current_language
from portal.payments import services as ledger
from portal.payments.models import Payment, PaymentState, ProcessedWebhookEvent
from portal.registration import services as registrations
from portal.registration.models import RegistrationState
from portal.transactions import state_change

bp = Blueprint("stripe_payments", __name__, template_folder="templates")


def writing_session() -> Session:
    """A session that may write, for the one write a GET page makes (the return page's check)."""
    return current_app.extensions["portal_db"]["sessionmaker"]()


def _own_registration(reg_id: int):
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    return registration


def _own_payment(payment_id: int) -> Payment:
    payment = ledger.payment_for_person(db.session, payment_id, current_user.person_id)
    if payment is None or payment.method != services.METHOD:
        abort(404)
    return payment


# -- paying by card --------------------------------------------------------------------------


def _render_pay(registration, form, error=None, status=200):
    return (
        render_template(
            "stripe_payments/pay.html",
            registration=registration,
            event=registration.event,
            form=form,
            error=error,
        ),
        status,
    )


@bp.route("/<lang_code>/payments/card/<int:reg_id>", methods=["GET", "POST"])
@login_required
def card_pay(reg_id: int):
    registration = _own_registration(reg_id)
    event = registration.event
    plugins.require_enabled(event, services.PLUGIN)
    if services.card_unavailable_reason() is not None:
        abort(404)
    if registration.state != RegistrationState.pending_payment or registration.total_minor <= 0:
        flash(str(ledger.NothingToPay.default_message), "info")
        return redirect(url_for("registration.my_registration", reg_id=registration.id))
    form = forms.PayForm()
    if not form.validate_on_submit():
        return _render_pay(registration, form, status=400 if form.is_submitted() else 200)
    with state_change() as change:
        payment = services.begin_card_payment(
            db.session, registration, language=current_language(), actor=current_user
        )
    if not change.ok:
        return redirect(url_for("registration.my_registration", reg_id=registration.id))
    if payment.state == PaymentState.pending:
        try:
            payment = services.open_checkout(db.session, payment)
        except ledger.ProviderUnavailable as exc:
            db.session.commit()  # keeps the note of what went wrong; nothing else changed
            return _render_pay(registration, form, error=exc.message, status=503)
        db.session.commit()
    if payment.state != PaymentState.pending or not payment.checkout_url:
        return redirect(url_for(".card_return", payment_id=payment.id))
    return redirect(payment.checkout_url, code=303)


def _check_with_stripe(payment: Payment) -> None:
    """The return page's server-side look at the session, through ``confirm_payment``.

    Only the session id the portal stored is asked about (never one from the address)."""
    session_id = payment.provider_session_id or ""
    if not session_id.startswith("cs_") or services.card_unavailable_reason() is not None:
        return
    try:
        obj = services.retrieve_session(session_id)
    except stripe.StripeError as exc:
        current_app.logger.warning("Stripe: checking session %s failed: %s", session_id, exc)
        return
    if str((obj.get("metadata") or {}).get("payment_id")) != str(payment.id):
        return
    writer = writing_session()
    try:
        services.settle_from_session(writer, payment.id, obj, source="return_page")
        writer.commit()
    finally:
        writer.close()
    db.session.rollback()  # end the read snapshot so that the change is seen


@bp.get("/<lang_code>/payments/<int:payment_id>/return")
@login_required
def card_return(payment_id: int):
    payment = _own_payment(payment_id)
    if payment.state == PaymentState.pending:
        _check_with_stripe(payment)
        payment = _own_payment(payment_id)
    registration = payment.registration
    return render_template(
        "stripe_payments/return.html",
        payment=payment,
        registration=registration,
        event=payment.event,
        receipt=payment.receipt,
        refresh=payment.state == PaymentState.pending,
    )


@bp.get("/<lang_code>/payments/<int:payment_id>/cancelled")
@login_required
def card_cancelled(payment_id: int):
    payment = _own_payment(payment_id)
    registration = payment.registration
    waiting = registration.state == RegistrationState.pending_payment
    methods = registrations.payment_methods(payment.event, registration) if waiting else []
    return render_template(
        "stripe_payments/cancelled.html",
        payment=payment,
        registration=registration,
        event=payment.event,
        waiting=waiting,
        others=[m for m in methods if m.code != "card"],
        card=next((m for m in methods if m.code == "card"), None),
    )


# -- the webhook -----------------------------------------------------------------------------


@bp.post("/stripe/webhook")
def webhook():
    if not current_app.config.get("STRIPE_WEBHOOK_SECRET"):
        return jsonify(error="webhook secret not configured"), 400
    payload = request.get_data(cache=False)
    try:
        event = services.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except (stripe.SignatureVerificationError, ValueError):
        return jsonify(error="invalid signature"), 400
    try:
        outcome = services.handle_event(db.session, event)
        db.session.commit()
    except services.RetryLater:
        db.session.rollback()
        return jsonify(outcome="retry later"), 409
    except IntegrityError:
        db.session.rollback()
        if db.session.get(ProcessedWebhookEvent, event["id"]) is None:
            raise
        outcome = "duplicate"
    return jsonify(received=True, outcome=outcome), 200


csrf.exempt(webhook)
