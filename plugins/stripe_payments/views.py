"""Payment pages: pay by card, return and cancel pages, receipts, the webhook, the organisers'
payments list with CSV export and refunds. Thin: parse, call one service, render."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
import stripe
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugins.stripe_payments import forms, services
from plugins.stripe_payments.models import (
    Payment,
    PaymentMethodCode,
    PaymentState,
    ProcessedWebhookEvent,
    RefundState,
)
from portal import plugins
from portal.app import csrf
from portal.csvexport import safe_cell
from portal.db import db
from portal.documents.pdf import render_pdf
from portal.events.models import Event
from portal.i18n import current_language, format_person_name, from_minor, minor_units
from portal.pagination import page_number, paginate
from portal.registration import services as registrations
from portal.registration.models import RegistrationState

bp = Blueprint("stripe_payments", __name__, template_folder="templates")

PAYMENT_PLUGINS = ("stripe_payments", "bank_transfer")
PER_PAGE = 50


def writing_session() -> Session:
    """A session that may write, for the one write a GET page makes (the return page's check)."""
    return current_app.extensions["portal_db"]["sessionmaker"]()


def _own_registration(reg_id: int):
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    return registration


def _own_payment(payment_id: int) -> Payment:
    payment = services.payment_for_person(db.session, payment_id, current_user.person_id)
    if payment is None or payment.method != PaymentMethodCode.card:
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
        flash(str(services.NothingToPay.default_message), "info")
        return redirect(url_for("registration.my_registration", reg_id=registration.id))
    form = forms.PayForm()
    if not form.validate_on_submit():
        return _render_pay(registration, form, status=400 if form.is_submitted() else 200)
    try:
        payment = services.begin_card_payment(
            db.session, registration, language=current_language(), actor=current_user
        )
        db.session.commit()
    except services.PaymentError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("registration.my_registration", reg_id=registration.id))
    if payment.state == PaymentState.pending:
        try:
            payment = services.open_checkout(db.session, payment)
        except services.ProviderUnavailable as exc:
            db.session.commit()  # keeps the note of what went wrong; nothing else changed
            return _render_pay(registration, form, error=exc.message, status=503)
        db.session.commit()
    if payment.state != PaymentState.pending or not payment.checkout_url:
        return redirect(url_for(".card_return", payment_id=payment.id))
    return redirect(payment.checkout_url, code=303)


def _check_with_stripe(payment: Payment) -> None:
    """The return page's server-side look at the session, through ``confirm_payment``."""
    session_id = payment.provider_session_id or request.args.get("session_id", "")
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
        if payment.provider_session_id is None:
            services.attach_session(writer, payment.id, obj)
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


@bp.get("/<lang_code>/payments/receipts/<int:document_id>.pdf")
@login_required
def receipt_pdf(document_id: int):
    document = services.receipt_for_owner(db.session, document_id, current_user.person_id)
    if document is None:
        abort(404)
    return Response(
        render_pdf(document),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{document.reference}.pdf"'},
    )


@bp.app_template_global("payment_receipts")
def payment_receipts(registration):
    """Receipts of a registration for its owner's page (used by _registration_payment.html)."""
    if registration is None or registration.id is None:
        return []
    return services.receipts_for(db.session, registration)


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


# -- organisers: payments list, CSV, refunds -------------------------------------------------


def _organiser_event(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    if not any(plugins.is_enabled(event, name) for name in PAYMENT_PLUGINS):
        abort(404)
    return event


def _filters() -> dict:
    args = request.args
    return {
        "state": args.get("state", ""),
        "method": args.get("method", ""),
        "flagged": args.get("flagged", ""),
        "q": args.get("q", "").strip()[:100],
    }


@bp.get("/<lang_code>/organiser/events/<slug>/payments/")
@login_required
def organiser_list(slug: str):
    event = _organiser_event(slug)
    filters = _filters()
    page = paginate(db.session, services.event_payments(event, **filters), page_number(), PER_PAGE)
    return render_template(
        "stripe_payments/organiser_list.html",
        event=event,
        page=page,
        filters=filters,
        args={k: v for k, v in filters.items() if v},
        totals=services.totals(db.session, event),
        state_labels=services.STATE_LABELS,
        method_labels=services.METHOD_LABELS,
        flag_labels=services.FLAG_LABELS,
        reason=services.card_unavailable_reason()
        if plugins.is_enabled(event, services.PLUGIN)
        else None,
    )


def _major(amount_minor: int | None, currency: str) -> str:
    """Minor units as a plain decimal in major units: 250.00 (USD), 5000 (JPY)."""
    if amount_minor is None:
        return ""
    return f"{from_minor(amount_minor, currency):.{minor_units(currency)}f}"


def _text(value) -> str:
    return safe_cell(str(value or ""))


@bp.get("/<lang_code>/organiser/events/<slug>/payments/export.csv")
@login_required
def export(slug: str):
    event = _organiser_event(slug)
    rows = db.session.scalars(services.event_payments(event, **_filters())).unique().all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            _("Payment"),
            _("Created"),
            _("Paid on"),
            _("Registration"),
            _("Name"),
            _("Email"),
            _("Affiliation"),
            _("Method"),
            _("State"),
            _("Currency"),
            _("Amount owed"),
            _("Amount received"),
            _("Amount refunded"),
            _("Net"),
            _("Receipt"),
            _("Needs attention"),
            _("Stripe session"),
            _("Stripe payment"),
        ]
    )
    tz = event.timezone
    from portal.i18n import format_datetime

    for p in rows:
        writer.writerow(
            [
                p.id,
                format_datetime(p.created_at, tz),
                format_datetime(p.paid_at, tz) if p.paid_at else "",
                p.registration_id,
                _text(format_person_name(p.person)),
                _text(p.person.email),
                _text(p.person.affiliation),
                str(services.METHOD_LABELS[p.method]),
                str(services.STATE_LABELS[p.state]),
                p.currency,
                _major(p.amount_minor, p.currency),
                _major(p.received_minor, p.currency),
                _major(p.refunded_minor, p.currency),
                _major(p.net_minor, p.currency),
                p.receipt.reference if p.receipt else "",
                str(services.FLAG_LABELS.get(p.flag, p.flag)) if p.flag else "",
                p.provider_session_id or "",
                p.provider_payment_id or "",
            ]
        )
    body = "\ufeff" + out.getvalue()  # the BOM lets Excel read UTF-8 (Japanese names)
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{event.slug}-payments.csv"',
        },
    )


def _event_payment(event: Event, payment_id: int) -> Payment:
    payment = db.session.scalar(
        sa.select(Payment)
        .where(Payment.id == payment_id, Payment.event_id == event.id)
        .execution_options(populate_existing=True)
    )
    if payment is None:
        abort(404)
    return payment


def _render_refund(event, payment, form, status=200):
    return (
        render_template(
            "stripe_payments/refund.html",
            event=event,
            payment=payment,
            form=form,
            resend_form=forms.ResendForm(),
            state_labels=services.STATE_LABELS,
            method_labels=services.METHOD_LABELS,
            flag_labels=services.FLAG_LABELS,
            RefundState=RefundState,
        ),
        status,
    )


@bp.route(
    "/<lang_code>/organiser/events/<slug>/payments/<int:payment_id>/refund",
    methods=["GET", "POST"],
)
@login_required
def refund(slug: str, payment_id: int):
    event = _organiser_event(slug)
    payment = _event_payment(event, payment_id)
    form = forms.RefundForm()
    if request.method == "GET":
        form.amount.data = _major(payment.refundable_minor, payment.currency)
    if not form.validate_on_submit():
        return _render_refund(event, payment, form, 400 if form.is_submitted() else 200)
    try:
        amount = services.parse_amount(form.amount.data, payment.currency)
        row = services.begin_refund(
            db.session, payment.id, amount, actor=current_user, reason=form.reason.data
        )
        db.session.commit()
    except services.PaymentError as exc:
        db.session.rollback()
        form.amount.errors = [*form.amount.errors, str(exc.message)]
        return _render_refund(event, _event_payment(event, payment_id), form, 400)
    return _send(event, payment_id, row)


def _send(event: Event, payment_id: int, row):
    if row.state == RefundState.pending:
        try:
            services.send_refund(db.session, row, actor=current_user)
        except services.PaymentError as exc:
            db.session.commit()  # the refund stays pending (network) or is marked failed
            flash(str(exc.message), "error")
            return redirect(url_for(".refund", slug=event.slug, payment_id=payment_id))
        db.session.commit()
    flash(_("The refund has been recorded."), "success")
    return redirect(url_for(".organiser_list", slug=event.slug))


@bp.post("/<lang_code>/organiser/events/<slug>/payments/<int:payment_id>/refunds/<int:refund_id>")
@login_required
def resend_refund(slug: str, payment_id: int, refund_id: int):
    event = _organiser_event(slug)
    payment = _event_payment(event, payment_id)
    row = next((r for r in payment.refunds if r.id == refund_id), None)
    if row is None:
        abort(404)
    if not forms.ResendForm().validate_on_submit():
        abort(400)
    return _send(event, payment_id, row)
