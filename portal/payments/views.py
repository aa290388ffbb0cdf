"""Payments pages of the ledger: receipts for their owner, the participant's choice of the
receipt's 宛名, and the organisers' payments list with CSV export and refunds (every
provider). Thin: parse, call one service, render."""

from __future__ import annotations

import csv
import io

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from portal import pagecache, plugins
from portal.csvexport import safe_cell
from portal.db import db
from portal.documents.pdf import render_pdf
from portal.events.access import organised_event_or_404
from portal.events.models import Event
from portal.i18n import format_datetime, format_person_name, from_minor, minor_units
from portal.pagination import page_number, paginate
from portal.params import filter_args
from portal.payments import forms, providers, services, unmatched
from portal.payments.models import Payment, RefundState
from portal.registration import services as registrations
from portal.registration.models import RegistrationState
from portal.transactions import state_change

bp = Blueprint("payments", __name__)
PER_PAGE = 50


def init_app(app) -> None:
    """The payments pages, the ``payments`` CLI group and the Jinja helper
    ``registration_sections(registration)``."""
    from portal.payments.cli import payments_group

    app.register_blueprint(bp)
    app.cli.add_command(payments_group)
    app.add_template_global(registration_sections, "registration_sections")


def registration_sections(registration) -> list:
    """Blocks for the participant's registration page: the ledger's, then those of the
    plugins enabled on the event (``registration_sections`` hook)."""
    from flask_login import current_user

    blocks = [registration_section(registration, current_user)]
    return blocks + plugins.collect(
        plugins.event_hooks(registration.event).registration_sections(
            registration=registration, user=current_user
        )
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


def registration_section(registration, user) -> Markup:
    """The ledger's block on the participant's registration page: the providers'
    instructions while payment is due, the receipt's 宛名 before it is issued, and the
    receipts (the owner only). Shown through the ``registration_sections`` hook's caller."""
    if registration is None or registration.id is None:
        return Markup("")
    receipts = services.receipts_for(db.session, registration)
    waiting = registration.state == RegistrationState.pending_payment
    instructions = []
    if waiting and registration.total_minor > 0:
        for provider in providers.for_event(registration.event):
            block = provider.instructions(registration)
            if block:
                instructions.append(block)
    form = None
    if not receipts and registration.total_minor > 0 and registration.is_active:
        chosen = services.receipt_addressee(db.session, registration)
        form = forms.ReceiptNameForm(
            formdata=None,
            data={"kind": chosen.kind, "name": chosen.name} if chosen else None,
        )
    return Markup(
        render_template(
            "payments/_registration_payment.html",
            registration=registration,
            event=registration.event,
            receipts=receipts,
            instructions=instructions,
            receipt_form=form,
        )
    )


@bp.post("/<lang_code>/payments/registrations/<int:reg_id>/receipt-name")
@login_required
def receipt_name(reg_id: int):
    registration = registrations.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    form = forms.ReceiptNameForm()
    if form.validate_on_submit():
        with state_change(success=_("The name for your receipt has been saved.")):
            services.set_receipt_addressee(
                db.session,
                registration,
                kind=form.kind.data,
                name=form.name.data,
                actor=current_user,
            )
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return redirect(url_for("registration.my_registration", reg_id=reg_id) + "#receipts")


# -- organisers: payments list, CSV, refunds -------------------------------------------------


def _organiser_event(slug: str) -> Event:
    event = organised_event_or_404(slug)
    if not providers.for_event(event) and not services.has_payments(db.session, event):
        abort(404)
    return event


def _filters() -> dict:
    return filter_args("state", "method", "flagged")


@bp.get("/<lang_code>/organiser/events/<slug>/payments/")
@login_required
def organiser_list(slug: str):
    event = _organiser_event(slug)
    # Why card payments cannot be taken now may change with time alone: it names the part.
    reason = next(
        (r for p in providers.for_event(event) if (r := p.unavailable_reason(event))), None
    )

    def content() -> str:
        filters = _filters()
        stmt = services.event_payments(event, **filters)
        return render_template(
            "payments/_organiser_list_content.html",
            event=event,
            page=paginate(db.session, stmt, page_number(), PER_PAGE),
            filters=filters,
            args={k: v for k, v in filters.items() if v},
            totals=services.totals(db.session, event),
            state_labels=services.STATE_LABELS,
            method_labels=providers.labels(),
            flag_labels=services.FLAG_LABELS,
            reason=reason,
        )

    # Payments, refunds and registrations change the event's version or the global one.
    html = pagecache.kept_for_person(f"payments|{reason}", [pagecache.EVENTS], content)
    return render_template("payments/organiser_list.html", event=event, content=Markup(html))


@bp.get("/<lang_code>/organiser/payments/unmatched")
@login_required
def unmatched_list():
    """Money that confirmed nothing: unmatched payments of the organiser's series, and (for
    administrators) paid checkouts that name none of our registrations."""
    if not current_user.is_organiser:
        abort(403)
    page = paginate(db.session, unmatched.unmatched_payments(current_user), page_number(), PER_PAGE)
    unknown = None
    if current_user.is_admin:
        rows = paginate(db.session, unmatched.unknown_sessions(), 1, PER_PAGE)
        unknown = [unmatched.UnknownSession.of(row) for row in rows.items]
    return render_template(
        "payments/unmatched.html",
        page=page,
        unknown=unknown,
        method_labels=providers.labels(),
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
    rows = services.event_payment_rows(db.session, event, **_filters())
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
            _("Provider session"),
            _("Provider payment"),
        ]
    )
    tz = event.timezone
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
                str(providers.label(p.method)),
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
    payment = services.payment_of_event(db.session, event, payment_id)
    if payment is None:
        abort(404)
    return payment


def _render_refund(event, payment, form, status=200):
    return (
        render_template(
            "payments/refund.html",
            event=event,
            payment=payment,
            form=form,
            resend_form=forms.ResendForm(),
            state_labels=services.STATE_LABELS,
            method_labels=providers.labels(),
            flag_labels=services.FLAG_LABELS,
            RefundState=RefundState,
            refund_online=providers.provider(payment.method).refund_online,
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
    with state_change(form, field="amount") as change:
        amount = services.parse_amount(form.amount.data, payment.currency)
        row = services.begin_refund(
            db.session, payment.id, amount, actor=current_user, reason=form.reason.data
        )
    if not change.ok:
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
