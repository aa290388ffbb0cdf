"""Payments: paying by card through Stripe Checkout, confirming, refunding, receipts.

The rules:

- Stripe's *signed* webhook is the truth. The return page and ``portal payments reconcile``
  may ask Stripe about a session, and every one of the three confirms a payment through the
  same function, ``confirm_payment``: it locks the payment row (after the event row, the order
  the registration services use), returns early when the payment is already confirmed, checks
  the amount and currency against what the registration owes (a mismatch is flagged to the
  organisers and confirms nothing), confirms the registration through the registration
  services, issues the receipt once and queues the receipt email.
- No database lock is held while Stripe is asked something: a card payment begins with the
  attempt row (``begin_card_payment``, committed by the view), then Stripe is asked
  (``open_checkout``), then the answer is stored. The attempt keeps its idempotency key and the
  exact parameters, so a retry after a timeout sends the same request and gets the same
  Checkout Session instead of a second one.
- Amounts are integer minor units (JPY has none, USD is in cents), which is what Stripe takes.
- None of these functions commits; views and the CLI command commit.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
import stripe
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from plugins.stripe_payments.models import (
    MOVES,
    PAID_STATES,
    Payment,
    PaymentMethodCode,
    PaymentState,
    ProcessedWebhookEvent,
    Refund,
    RefundState,
)
from portal import audit, plugins
from portal.accounts.models import Person, Sector
from portal.db import utcnow
from portal.documents import services as documents
from portal.documents.models import Document, DocumentKind
from portal.events.models import Event
from portal.i18n import LANGUAGES, BilingualText, format_money, format_person_name, minor_units
from portal.mail.services import queue_email
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState

PLUGIN = "stripe_payments"
P = PaymentState
R = RegistrationState

WEBHOOK_TOLERANCE = 300  # seconds a signed webhook stays valid
CHECKOUT_MIN = timedelta(minutes=30)  # Stripe's limits for a Checkout Session's expiry
CHECKOUT_MAX = timedelta(hours=24)

METHOD_LABELS = {
    PaymentMethodCode.card: _l("Card payment"),
    PaymentMethodCode.bank_transfer: _l("Bank transfer"),
}

STATE_LABELS = {
    P.pending: _l("Pending"),
    P.succeeded: _l("Paid"),
    P.failed: _l("Failed"),
    P.expired: _l("Expired"),
    P.refunded: _l("Refunded"),
    P.partially_refunded: _l("Partially refunded"),
}

FLAG_LABELS = {
    "amount_mismatch": _l("The amount paid differs from what the registration owes."),
    "already_paid": _l("The registration was already paid: this is a second payment."),
    "registration_cancelled": _l("The registration had been cancelled when this payment arrived."),
    "no_place": _l(
        "The payment arrived after the deadline and the place had gone to someone else."
    ),
    "not_awaiting_payment": _l("The registration was not waiting for a payment."),
    "paid_after_closing": _l("Stripe reported a payment for an attempt that had already ended."),
}


# -- errors ----------------------------------------------------------------------------------


class PaymentError(Exception):
    """A refused payment action; ``message`` is translated, ``field`` names the form field."""

    default_message = _l("This payment action is not possible.")

    def __init__(self, message=None, field: str | None = None):
        self.message = message if message is not None else self.default_message
        self.field = field
        super().__init__(str(self.message))


class ProviderUnavailable(PaymentError):
    default_message = _l(
        "The card payment service could not be reached. Nothing has been charged and your "
        "place is still held. Please try again in a few minutes, or choose another way to pay."
    )


class NothingToPay(PaymentError):
    default_message = _l("This registration has nothing to pay at the moment.")


class CardNotAvailable(PaymentError):
    default_message = _l("Card payment is not available for this event.")


class RefundError(PaymentError):
    default_message = _l("This refund is not possible.")


class PaymentTransitionError(PaymentError):
    default_message = _l("This payment cannot change that way in its current state.")


class RetryLater(Exception):
    """A webhook that cannot be applied yet (e.g. a refund of a payment not yet confirmed)."""


# -- configuration ---------------------------------------------------------------------------


def card_unavailable_reason() -> str | None:
    """Why card payment is not offered (translated), or None when it is configured."""
    cfg = current_app.config
    if not cfg.get("STRIPE_SECRET_KEY"):
        return _(
            "Card payment is not offered: the setting PORTAL_STRIPE_SECRET_KEY (Stripe's secret "
            "key) is not set."
        )
    if not cfg.get("STRIPE_WEBHOOK_SECRET"):
        return _(
            "Card payment is not offered: the setting PORTAL_STRIPE_WEBHOOK_SECRET (the signing "
            "secret of Stripe's webhook) is not set, so payments could not be confirmed."
        )
    return None


def stripe_client() -> stripe.StripeClient:
    """A StripeClient from the settings; PORTAL_STRIPE_API_BASE points it elsewhere (tests)."""
    cfg = current_app.config
    if not cfg.get("STRIPE_SECRET_KEY"):
        raise CardNotAvailable()
    base = cfg.get("STRIPE_API_BASE")
    return stripe.StripeClient(
        cfg["STRIPE_SECRET_KEY"],
        base_addresses={"api": base.rstrip("/")} if base else None,
        http_client=stripe.RequestsClient(timeout=float(cfg.get("STRIPE_TIMEOUT", 20))),
        max_network_retries=int(cfg.get("STRIPE_NETWORK_RETRIES", 1)),
    )


def settings(event: Event) -> dict:
    return plugins.settings(event, PLUGIN)


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# -- locking and the state machine -----------------------------------------------------------


def lock_payment(session: Session, payment_id: int) -> Payment:
    """The payment, re-read under a row lock (after its event's lock, as registrations do)."""
    event_id = session.scalar(sa.select(Payment.event_id).where(Payment.id == payment_id))
    if event_id is None:
        raise PaymentError(field="payment")
    session.execute(sa.select(Event.id).where(Event.id == event_id).with_for_update())
    return session.execute(
        sa.select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _move(payment: Payment, new: PaymentState) -> None:
    if new not in MOVES[payment.state]:
        raise PaymentTransitionError()
    payment.state = new


def _flag(session: Session, payment: Payment, code: str, **detail) -> None:
    """Something organisers must look at: on the payments list and in both audit trails."""
    payment.flag = code
    payment.flag_detail = detail
    audit.record(
        session,
        None,
        "payment",
        payment.id,
        "flagged",
        flag=code,
        registration_id=payment.registration_id,
        **detail,
    )
    audit.record(
        session,
        None,
        "registration",
        payment.registration_id,
        "payment_flagged",
        payment_id=payment.id,
        flag=code,
        **detail,
    )


def _language(person: Person, event: Event) -> str:
    if person.preferred_language in LANGUAGES:
        return person.preferred_language
    return event.series.default_language


# -- paying by card --------------------------------------------------------------------------


def _checkout_expiry(registration: Registration, event: Event, now: datetime) -> datetime:
    """A day at most, never after the payment deadline, at least Stripe's 30 minutes."""
    hours = int(settings(event).get("checkout_hours") or 24)
    expires = now + min(CHECKOUT_MAX, max(CHECKOUT_MIN, timedelta(hours=hours)))
    if registration.payment_deadline is not None:
        expires = min(expires, registration.payment_deadline)
    return max(expires, now + CHECKOUT_MIN + timedelta(minutes=1)).replace(microsecond=0)


def _checkout_params(payment: Payment, registration: Registration, lang: str) -> dict:
    event = registration.event
    person = registration.person
    with force_locale(lang):
        title = event.t("title", lang)
        category = (
            registration.fee_category.name.get(lang, event.series.default_language)
            if registration.fee_category
            else ""
        )
        name = _("Registration: %(event)s", event=title)
    return_url = registrations.external_url(
        "stripe_payments.card_return", lang_code=lang, payment_id=payment.id
    )
    cancel_url = registrations.external_url(
        "stripe_payments.card_cancelled", lang_code=lang, payment_id=payment.id
    )
    metadata = {
        "registration_id": str(registration.id),
        "payment_id": str(payment.id),
        "event": event.slug,
    }
    product = {"name": name[:250]}
    if category:
        product["description"] = category[:250]
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": payment.currency.lower(),
                    "unit_amount": payment.amount_minor,
                    "product_data": product,
                },
                "quantity": 1,
            }
        ],
        "locale": lang,
        "client_reference_id": f"registration-{registration.id}",
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": return_url + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": cancel_url,
        "expires_at": int(payment.expires_at.timestamp()),
    }
    if person.email:
        params["customer_email"] = person.email
    return params


def reusable_attempt(
    session: Session, registration: Registration, lang: str, now: datetime
) -> Payment | None:
    """An open card attempt for the same amount and language that may be sent again."""
    return session.scalar(
        sa.select(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.method == PaymentMethodCode.card,
            Payment.state == P.pending,
            Payment.superseded_at.is_(None),
            Payment.amount_minor == registration.total_minor,
            Payment.currency == registration.currency,
            Payment.language == lang,
            # A session Stripe made may be reused until shortly before it expires; a request
            # never answered may be sent again only while its expiry is still acceptable.
            sa.or_(
                sa.and_(
                    Payment.provider_session_id.is_not(None),
                    Payment.expires_at > now + timedelta(minutes=5),
                ),
                Payment.expires_at > now + CHECKOUT_MIN + timedelta(minutes=1),
            ),
        )
        .order_by(Payment.id.desc())
        .limit(1)
    )


def begin_card_payment(
    session: Session,
    registration: Registration,
    *,
    language: str,
    actor=None,
    now: datetime | None = None,
) -> Payment:
    """Step one of paying by card: the attempt row, with its idempotency key and parameters.

    The amount is what the registration owes, computed on the server from its price lines.
    An open attempt for the same amount is reused (so a retry after a network failure sends
    the very same request). The caller commits before ``open_checkout`` asks Stripe.
    """
    now = now or utcnow()
    if card_unavailable_reason() is not None:
        raise CardNotAvailable()
    if registration.state != R.pending_payment or registration.total_minor <= 0:
        raise NothingToPay()
    lang = language if language in LANGUAGES else _language(registration.person, registration.event)
    existing = reusable_attempt(session, registration, lang, now)
    if existing is not None:
        return existing
    # Open attempts for another amount (the registration was repriced) are stale now.
    session.execute(
        sa.update(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.method == PaymentMethodCode.card,
            Payment.state == P.pending,
            Payment.superseded_at.is_(None),
            sa.or_(
                Payment.amount_minor != registration.total_minor,
                Payment.currency != registration.currency.upper(),
            ),
        )
        .values(superseded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    payment = Payment(
        registration_id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        method=PaymentMethodCode.card,
        state=P.pending,
        amount_minor=registration.total_minor,
        currency=registration.currency.upper(),
        idempotency_key=f"portal-checkout-{secrets.token_hex(16)}",
        language=lang,
        expires_at=_checkout_expiry(registration, registration.event, now),
        created_by_id=getattr(actor, "id", None),
    )
    session.add(payment)
    session.flush()
    payment.request_params = _checkout_params(payment, registration, lang)
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        "card_payment_started",
        registration_id=registration.id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )
    return payment


def open_checkout(session: Session, payment: Payment) -> Payment:
    """Ask Stripe for the attempt's Checkout Session (same key, same parameters) and store it.

    Raises ProviderUnavailable when Stripe cannot be reached or answers with an error; the
    error is noted on the attempt (the caller commits that) and the registration stays
    pending, so trying again later works.
    """
    if payment.provider_session_id and payment.checkout_url:
        return payment
    try:
        answer = stripe_client().v1.checkout.sessions.create(
            params=payment.request_params,
            options={"idempotency_key": payment.idempotency_key},
        )
    except stripe.StripeError as exc:
        current_app.logger.warning("Stripe: creating a Checkout Session failed: %s", exc)
        note_provider_error(session, payment.id, exc, final=not _transient(exc))
        raise ProviderUnavailable() from exc
    return attach_session(session, payment.id, answer.to_dict())


def _transient(exc: Exception) -> bool:
    """Worth sending the same request again (network, rate limit, Stripe's own trouble)."""
    return isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError)


def note_provider_error(
    session: Session, payment_id: int, exc: Exception, *, final: bool = False
) -> None:
    """Note what Stripe answered; a refused request (``final``) ends the attempt, so that the
    next try starts a new one instead of repeating a request Stripe will refuse again."""
    payment = session.get(Payment, payment_id)
    payment.last_error = _error_text(exc)
    if final and payment.state == P.pending and payment.provider_session_id is None:
        _move(payment, P.failed)
    audit.record(
        session,
        None,
        "payment",
        payment_id,
        "provider_error",
        error=payment.last_error,
        final=final,
    )


def attach_session(session: Session, payment_id: int, data: dict) -> Payment:
    """Store the Checkout Session Stripe created for the attempt (the webhook may be first)."""
    payment = lock_payment(session, payment_id)
    if payment.provider_session_id not in (None, data["id"]):
        raise PaymentError(field="payment")
    payment.provider_session_id = data["id"]
    payment.checkout_url = data.get("url") or payment.checkout_url
    payment.last_error = None
    if payment.state == P.pending:
        payment.provider_data = data
    return payment


def retrieve_session(session_id: str) -> dict:
    """The Checkout Session as Stripe describes it now (raises stripe.StripeError)."""
    return stripe_client().v1.checkout.sessions.retrieve(session_id).to_dict()


# -- the one function that confirms a payment ------------------------------------------------


def confirm_payment(
    session: Session,
    payment_id: int,
    *,
    received_minor: int,
    received_currency: str,
    source: str,
    provider_data: dict | None = None,
    provider_payment_id: str | None = None,
    actor=None,
    now: datetime | None = None,
) -> Payment:
    """Confirm a payment: under a row lock, once. Webhook, return page, reconcile and the
    organiser's bank-transfer form all come here.

    - already confirmed (succeeded, refunded …): returns at once, changes nothing;
    - money received for an attempt that had already ended: flagged, nothing else;
    - the amount or currency differs from what the registration owes: the payment is recorded
      as received and flagged; the registration is not confirmed and no receipt is issued;
    - the registration is not waiting for a payment any more (paid otherwise, cancelled, its
      place gone): recorded and flagged, so organisers can refund;
    - otherwise: the registration is confirmed (registration services), a receipt is issued
      once in the payer's language and emailed.
    """
    now = now or utcnow()
    payment = lock_payment(session, payment_id)
    if payment.state in PAID_STATES:
        return payment
    if provider_data is not None:
        payment.provider_data = provider_data
    if provider_payment_id:
        payment.provider_payment_id = provider_payment_id
    received_currency = (received_currency or "").upper()
    if payment.state != P.pending:
        if payment.flag is None:
            _flag(
                session,
                payment,
                "paid_after_closing",
                state=payment.state.value,
                received_minor=received_minor,
                received_currency=received_currency,
                source=source,
            )
        return payment
    payment.received_minor = received_minor
    payment.received_currency = received_currency
    payment.paid_at = now
    _move(payment, P.succeeded)
    registration = session.execute(
        sa.select(Registration)
        .where(Registration.id == payment.registration_id)
        .options(joinedload(Registration.person), joinedload(Registration.event))
        .execution_options(populate_existing=True)
    ).scalar_one()
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        "succeeded",
        source=source,
        received_minor=received_minor,
        received_currency=received_currency,
    )
    owed = (registration.total_minor, registration.currency.upper())
    if (received_minor, received_currency) != owed or received_currency != payment.currency:
        _flag(
            session,
            payment,
            "amount_mismatch",
            received_minor=received_minor,
            received_currency=received_currency,
            owed_minor=owed[0],
            owed_currency=owed[1],
        )
        return payment
    try:
        registrations.confirm(
            session,
            registration,
            actor=actor,
            action=f"paid_by_{payment.method.value}",
            reason=source,
            now=now,
            payment_id=payment.id,
        )
    except registrations.NoPlaceAvailable:
        _flag(session, payment, "no_place", registration_state=registration.state.value)
        return payment
    except registrations.RegistrationError:
        state = registration.state
        code = {
            R.confirmed: "already_paid",
            R.attended: "already_paid",
            R.cancelled: "registration_cancelled",
        }.get(state, "not_awaiting_payment")
        _flag(session, payment, code, registration_state=state.value)
        return payment
    issue_receipt(session, payment, registration, actor=actor)
    return payment


def issue_receipt(session: Session, payment: Payment, registration: Registration, actor=None):
    """The payment's receipt (領収書), issued once, in the payer's language, and its email."""
    if payment.receipt_id is not None:
        return session.get(Document, payment.receipt_id)
    event = registration.event
    person = registration.person
    lang = _language(person, event)
    default = event.series.default_language
    with force_locale(lang):
        lines = [
            {
                "label": BilingualText.of(line.get("label")).get(lang, default),
                "amount_minor": int(line["amount_minor"]),
            }
            for line in registration.price_lines or []
            if int(line.get("amount_minor") or 0) != 0
        ] or [{"label": _("Registration fee"), "amount_minor": payment.received_minor}]
        purpose = _("Registration fee for %(event)s", event=event.t("title", lang))
    document = documents.issue_document(
        session,
        series=event.series,
        kind=DocumentKind.receipt,
        language=lang,
        lines=lines,
        currency=payment.currency,
        subject_type="payment",
        subject_id=payment.id,
        purpose=purpose,
        recipient_name=format_person_name(person, lang),
        recipient_company=person.affiliation if person.sector == Sector.company else "",
        owner_person_id=person.id,
        paid_at=payment.paid_at,
        actor=actor,
    )
    payment.receipt_id = document.id
    if person.email:
        queue_email(
            session,
            person.email,
            "stripe_payments/receipt",
            lang,
            payment=payment,
            registration=registration,
            event=event,
            person=person,
            document=document,
            amount=format_money(payment.received_minor, payment.currency, lang),
            method=METHOD_LABELS[payment.method],
            receipt_url=registrations.external_url(
                "stripe_payments.receipt_pdf", lang_code=lang, document_id=document.id
            ),
            registration_url=registrations.external_url(
                "registration.my_registration", lang_code=lang, reg_id=registration.id
            ),
        )
    return document


# -- failed and expired attempts -------------------------------------------------------------


def fail_payment(
    session: Session, payment_id: int, *, provider_data: dict | None = None, reason: str = ""
) -> Payment:
    """An asynchronous payment failed: pending → failed; the registration stays pending."""
    payment = lock_payment(session, payment_id)
    if payment.state != P.pending:
        return payment
    if provider_data is not None:
        payment.provider_data = provider_data
    _move(payment, P.failed)
    audit.record(session, None, "payment", payment.id, "failed", reason=reason)
    registration = payment.registration
    person = registration.person
    if registration.state == R.pending_payment and person.email:
        lang = _language(person, registration.event)
        queue_email(
            session,
            person.email,
            "stripe_payments/payment_failed",
            lang,
            payment=payment,
            registration=registration,
            event=registration.event,
            person=person,
            registration_url=registrations.external_url(
                "registration.my_registration", lang_code=lang, reg_id=registration.id
            ),
        )
    return payment


def _other_open_attempts(session: Session, payment: Payment, now: datetime) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Payment)
            .where(
                Payment.registration_id == payment.registration_id,
                Payment.id != payment.id,
                Payment.state == P.pending,
                Payment.superseded_at.is_(None),
                sa.or_(Payment.expires_at.is_(None), Payment.expires_at > now),
            )
        )
        or 0
    )


def expire_payment(
    session: Session,
    payment_id: int,
    *,
    provider_data: dict | None = None,
    now: datetime | None = None,
) -> Payment:
    """The Checkout Session expired unpaid: pending → expired.

    With the setting ``release_seat_when_checkout_expires`` (on by default) the registration,
    if it is still waiting for this payment and has no other open attempt, is cancelled by the
    registration services, which give the seat to the first person on the waiting list.
    """
    now = now or utcnow()
    payment = lock_payment(session, payment_id)
    if payment.state != P.pending:
        return payment
    if provider_data is not None:
        payment.provider_data = provider_data
    _move(payment, P.expired)
    audit.record(session, None, "payment", payment.id, "expired")
    registration = payment.registration
    release = settings(registration.event).get("release_seat_when_checkout_expires", True)
    if (
        release
        and payment.superseded_at is None
        and registration.state == R.pending_payment
        and _other_open_attempts(session, payment, now) == 0
    ):
        registrations.cancel(
            session,
            registration,
            actor=None,
            reason="card payment session expired",
            now=now,
            action="payment_expired",
            email="expired",
        )
    return payment


def supersede_open_attempts(session: Session, registration: Registration, now=None) -> int:
    """The registration no longer waits for its open card attempts (paid otherwise, cancelled
    or changed): mark them so they are not reused and ``reconcile`` expires them at Stripe."""
    now = now or utcnow()
    result = session.execute(
        sa.update(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.method == PaymentMethodCode.card,
            Payment.state == P.pending,
            Payment.superseded_at.is_(None),
        )
        .values(superseded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount or 0


# -- refunds ---------------------------------------------------------------------------------


def _in_flight(payment: Payment) -> int:
    return sum(r.amount_minor for r in payment.refunds if r.state == RefundState.pending)


def begin_refund(
    session: Session, payment_id: int, amount_minor: int, *, actor, reason: str = ""
) -> Refund:
    """Step one of a refund: the refund row with its idempotency key (committed by the view).

    Card payments are then refunded through Stripe (``send_refund``); a bank transfer's refund
    is paid back by the organiser and recorded at once.
    """
    payment = lock_payment(session, payment_id)
    if payment.state not in (P.succeeded, P.partially_refunded):
        raise RefundError(_l("Only a received payment can be refunded."), field="amount")
    left = payment.refundable_minor - _in_flight(payment)
    if amount_minor <= 0:
        raise RefundError(_l("Enter an amount greater than zero."), field="amount")
    if amount_minor > left:
        raise RefundError(
            _l(
                "At most %(amount)s can be refunded.",
                amount=format_money(max(left, 0), payment.currency),
            ),
            field="amount",
        )
    refund = Refund(
        payment_id=payment.id,
        amount_minor=amount_minor,
        currency=payment.currency,
        state=RefundState.pending,
        source="portal",
        idempotency_key=f"portal-refund-{secrets.token_hex(16)}",
        reason=(reason or "").strip()[:1000],
        actor_id=getattr(actor, "id", None),
    )
    session.add(refund)
    session.flush()
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        "refund_requested",
        refund_id=refund.id,
        amount_minor=amount_minor,
        reason=refund.reason,
    )
    if payment.method != PaymentMethodCode.card:
        complete_refund(session, refund.id, None, actor=actor)
    return refund


def send_refund(session: Session, refund: Refund, *, actor=None) -> Refund:
    """Ask Stripe to refund (with the refund's idempotency key) and record the answer.

    A network failure leaves the refund pending (ProviderUnavailable): sending it again uses
    the same key, so Stripe refunds once. Stripe refusing it marks it failed (RefundError).
    """
    if refund.state != RefundState.pending:
        return refund
    payment = refund.payment
    params = {
        "payment_intent": payment.provider_payment_id,
        "amount": refund.amount_minor,
        "reason": "requested_by_customer",
        "metadata": {
            "refund_id": str(refund.id),
            "payment_id": str(payment.id),
            "registration_id": str(payment.registration_id),
        },
    }
    try:
        answer = stripe_client().v1.refunds.create(
            params=params, options={"idempotency_key": refund.idempotency_key}
        )
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        current_app.logger.warning("Stripe: refund %s failed: %s", refund.id, exc)
        row = session.get(Refund, refund.id)
        row.last_error = _error_text(exc)
        raise ProviderUnavailable(
            _l("Stripe could not be reached. The refund is waiting; please send it again later.")
        ) from exc
    except stripe.StripeError as exc:
        row = session.get(Refund, refund.id)
        row.last_error = _error_text(exc)
        row.state = RefundState.failed
        audit.record(session, actor, "payment", payment.id, "refund_failed", error=row.last_error)
        raise RefundError(
            _l(
                "Stripe refused the refund: %(message)s",
                message=getattr(exc, "user_message", "") or str(exc),
            ),
            field="amount",
        ) from exc
    return complete_refund(session, refund.id, answer.to_dict(), actor=actor)


def complete_refund(session: Session, refund_id: int, data: dict | None, *, actor=None) -> Refund:
    """Record a refund's answer; the webhook may have recorded it first (then nothing changes)."""
    refund = session.get(Refund, refund_id)
    payment = lock_payment(session, refund.payment_id)
    session.refresh(refund)
    if refund.state != RefundState.pending:
        return refund
    if data is not None:
        refund.provider_data = data
        refund.provider_refund_id = data.get("id") or refund.provider_refund_id
        if data.get("status") in ("failed", "canceled"):
            refund.state = RefundState.failed
            audit.record(
                session, actor, "payment", payment.id, "refund_failed", refund_id=refund.id
            )
            return refund
    _apply_refund(session, payment, refund, actor=actor)
    return refund


def _apply_refund(session: Session, payment: Payment, refund: Refund, *, actor=None) -> None:
    """A refund went through: the payment's state, a corrected receipt, an email, the policy."""
    refund.state = RefundState.succeeded
    refund.completed_at = utcnow()
    payment.refunded_minor += refund.amount_minor
    full = payment.refunded_minor >= (payment.received_minor or payment.amount_minor)
    _move(payment, P.refunded if full else P.partially_refunded)
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        "refunded" if full else "partially_refunded",
        refund_id=refund.id,
        amount_minor=refund.amount_minor,
        refunded_minor=payment.refunded_minor,
        source=refund.source,
    )
    registration = payment.registration
    person = registration.person
    event = registration.event
    lang = _language(person, event)
    _correct_receipt(session, payment, refund, full, actor)
    if person.email:
        queue_email(
            session,
            person.email,
            "stripe_payments/refunded",
            lang,
            payment=payment,
            refund=refund,
            registration=registration,
            event=event,
            person=person,
            amount=format_money(refund.amount_minor, refund.currency, lang),
            full=full,
            registration_url=registrations.external_url(
                "registration.my_registration", lang_code=lang, reg_id=registration.id
            ),
        )
    if (
        full
        and settings(event).get("cancel_on_full_refund", True)
        and registration.state in (R.confirmed, R.pending_payment, R.waitlisted)
    ):
        registrations.cancel(
            session,
            registration,
            actor=actor,
            reason="payment refunded in full",
            action="refunded",
            email="cancelled",
        )


def _correct_receipt(session, payment: Payment, refund: Refund, full: bool, actor) -> None:
    """Issued receipts are never edited: a refund issues a correction or a cancellation."""
    if payment.receipt_id is None:
        return
    current = session.get(Document, payment.receipt_id)
    if full:
        replacement = documents.cancel_document(session, current, actor=actor)
    else:
        with force_locale(current.language):
            label = _("Refund")
        lines = [*current.lines, {"label": label, "amount_minor": -refund.amount_minor}]
        replacement = documents.correct_document(session, current, actor=actor, lines=lines)
    payment.receipt_id = replacement.id


def record_provider_refunds(session: Session, charge: dict) -> tuple[str, Payment | None]:
    """``charge.refunded``: the charge's refunded total as Stripe knows it.

    Refunds asked from the portal whose answer is still being recorded are matched first;
    the rest (refunds made in Stripe's dashboard) become new refund rows.
    """
    payment_id = session.scalar(
        sa.select(Payment.id).where(Payment.provider_payment_id == charge.get("payment_intent"))
    )
    if payment_id is None:
        return "unknown_payment", None
    payment = lock_payment(session, payment_id)
    if payment.state == P.pending:
        raise RetryLater("the payment is not confirmed yet")
    if payment.state not in PAID_STATES:
        return "not_paid", payment
    difference = int(charge.get("amount_refunded") or 0) - payment.refunded_minor
    if difference <= 0:
        return "no_change", payment
    for refund in list(payment.refunds):
        if refund.state == RefundState.pending and 0 < refund.amount_minor <= difference:
            _apply_refund(session, payment, refund)
            difference -= refund.amount_minor
    if difference > 0:
        refund = Refund(
            payment_id=payment.id,
            amount_minor=difference,
            currency=payment.currency,
            state=RefundState.pending,
            source="provider",
            provider_data=charge,
            reason="refunded in Stripe",
        )
        session.add(refund)
        session.flush()
        _apply_refund(session, payment, refund)
    return "refund_recorded", payment


# -- webhooks --------------------------------------------------------------------------------


def verify_webhook(payload: bytes, signature: str | None) -> dict:
    """The event of a webhook whose signature (over the raw body) and time are valid.

    Raises stripe.SignatureVerificationError (forged, unsigned, stale or from the future)
    or ValueError (not JSON).
    """
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    stripe.WebhookSignature.verify_header(payload, signature, secret, WEBHOOK_TOLERANCE)
    stamps = [p.partition("=")[2] for p in signature.split(",") if p.startswith("t=")]
    if not stamps or not stamps[0].isdigit() or int(stamps[0]) > time.time() + WEBHOOK_TOLERANCE:
        raise stripe.SignatureVerificationError("Timestamp in the future", signature, payload)
    event = json.loads(payload.decode("utf-8"))
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise ValueError("not a Stripe event")
    return event


def _payment_for_session(session: Session, obj: dict) -> Payment | None:
    """The attempt a Checkout Session belongs to, also when the webhook beat the portal."""
    payment = session.scalar(sa.select(Payment).where(Payment.provider_session_id == obj["id"]))
    if payment is not None:
        return payment
    metadata = obj.get("metadata") or {}
    raw_payment = str(metadata.get("payment_id") or "")
    raw_registration = str(metadata.get("registration_id") or "")
    if not raw_registration:
        raw_registration = str(obj.get("client_reference_id") or "").removeprefix("registration-")
    if raw_payment.isdigit():
        payment = session.get(Payment, int(raw_payment))
        if (
            payment is not None
            and payment.provider_session_id is None
            and payment.method == PaymentMethodCode.card
            and str(payment.registration_id) == raw_registration
        ):
            attach_session(session, payment.id, obj)
            return payment
    if not raw_registration.isdigit():
        return None
    registration = session.get(Registration, int(raw_registration))
    if registration is None:
        return None
    # A session the portal has no attempt for: record it so that the money is accounted for.
    payment = Payment(
        registration_id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        method=PaymentMethodCode.card,
        state=P.pending,
        amount_minor=registration.total_minor,
        currency=registration.currency.upper(),
        language=_language(registration.person, registration.event),
        provider_session_id=obj["id"],
        provider_data=obj,
        note="recorded from Stripe's webhook",
    )
    session.add(payment)
    session.flush()
    audit.record(
        session, None, "payment", payment.id, "recorded_from_webhook", session_id=obj["id"]
    )
    return payment


def _paid(obj: dict) -> bool:
    return obj.get("status") == "complete" and obj.get("payment_status") in (
        "paid",
        "no_payment_required",
    )


def settle_from_session(session: Session, payment_id: int, obj: dict, *, source: str) -> str:
    """Apply what a Checkout Session says: paid → confirm, expired → expire, else nothing."""
    if _paid(obj):
        confirm_payment(
            session,
            payment_id,
            received_minor=int(obj.get("amount_total") or 0),
            received_currency=obj.get("currency") or "",
            provider_data=obj,
            provider_payment_id=obj.get("payment_intent"),
            source=source,
        )
        return "confirmed"
    if obj.get("status") == "expired":
        expire_payment(session, payment_id, provider_data=obj)
        return "expired"
    return "open"


def handle_event(session: Session, event: dict) -> str:
    """Apply one verified Stripe event, once per event id; returns what happened."""
    if session.get(ProcessedWebhookEvent, event["id"]) is not None:
        return "duplicate"
    record = ProcessedWebhookEvent(id=event["id"], type=event["type"], payload=event)
    session.add(record)
    session.flush()  # a concurrent delivery of the same id fails here (primary key)
    obj = (event.get("data") or {}).get("object") or {}
    kind = event["type"]
    outcome = "ignored"
    payment = None
    if kind.startswith("checkout.session."):
        payment = _payment_for_session(session, obj) if obj.get("id") else None
        if payment is None:
            outcome = "unknown_session"
        elif kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            if _paid(obj):
                outcome = settle_from_session(session, payment.id, obj, source="webhook")
            else:
                outcome = "awaiting_payment"
                locked = lock_payment(session, payment.id)
                if locked.state == P.pending:
                    locked.provider_data = obj
                    locked.provider_payment_id = obj.get("payment_intent")
        elif kind == "checkout.session.async_payment_failed":
            fail_payment(session, payment.id, provider_data=obj, reason="async_payment_failed")
            outcome = "failed"
        elif kind == "checkout.session.expired":
            expire_payment(session, payment.id, provider_data=obj)
            outcome = "expired"
    elif kind == "charge.refunded":
        outcome, payment = record_provider_refunds(session, obj)
    record.outcome = outcome
    record.payment_id = payment.id if payment is not None else None
    return outcome


# -- reconcile -------------------------------------------------------------------------------


def reconcile_candidates(session: Session) -> list[int]:
    """Card attempts still pending that have a Checkout Session at Stripe."""
    return list(
        session.scalars(
            sa.select(Payment.id)
            .where(
                Payment.method == PaymentMethodCode.card,
                Payment.state == P.pending,
                Payment.provider_session_id.is_not(None),
            )
            .order_by(Payment.id)
        )
    )


def expire_abandoned_attempts(session: Session, now: datetime | None = None) -> int:
    """Attempts that never got a Checkout Session (Stripe unreachable) and whose time is up."""
    now = now or utcnow()
    rows = session.scalars(
        sa.select(Payment).where(
            Payment.method == PaymentMethodCode.card,
            Payment.state == P.pending,
            Payment.provider_session_id.is_(None),
            Payment.expires_at <= now,
        )
    ).all()
    for payment in rows:
        _move(payment, P.expired)
        audit.record(session, None, "payment", payment.id, "expired", reason="never opened")
    return len(rows)


# -- queries ---------------------------------------------------------------------------------


def event_payments(event: Event, *, state: str = "", method: str = "", flagged: str = "", q=""):
    """The payments of an event for the organisers' list, person eager-loaded."""
    stmt = (
        sa.select(Payment)
        .join(Person, Payment.person_id == Person.id)
        .where(Payment.event_id == event.id)
        .options(
            joinedload(Payment.person),
            joinedload(Payment.registration),
            joinedload(Payment.receipt),
        )
    )
    if state in {s.value for s in PaymentState}:
        stmt = stmt.where(Payment.state == PaymentState(state))
    if method in {m.value for m in PaymentMethodCode}:
        stmt = stmt.where(Payment.method == PaymentMethodCode(method))
    if flagged == "1":
        stmt = stmt.where(Payment.flag.is_not(None))
    if q and q.strip():
        stmt = stmt.where(registrations.person_search(q))
    return stmt.order_by(Payment.created_at.desc(), Payment.id.desc())


@dataclass
class Total:
    method: PaymentMethodCode
    currency: str
    count: int
    received_minor: int
    refunded_minor: int

    @property
    def net_minor(self) -> int:
        return self.received_minor - self.refunded_minor


def totals(session: Session, event: Event) -> list[Total]:
    """Money received and refunded per method and currency: one grouped query."""
    received = sa.func.coalesce(Payment.received_minor, Payment.amount_minor)
    rows = session.execute(
        sa.select(
            Payment.method,
            Payment.currency,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(received), 0),
            sa.func.coalesce(sa.func.sum(Payment.refunded_minor), 0),
        )
        .where(Payment.event_id == event.id, Payment.state.in_(PAID_STATES))
        .group_by(Payment.method, Payment.currency)
        .order_by(Payment.method, Payment.currency)
    ).all()
    return [Total(PaymentMethodCode(m), c, int(n), int(r), int(f)) for m, c, n, r, f in rows]


def flagged_count(session: Session, event: Event) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Payment)
            .where(Payment.event_id == event.id, Payment.flag.is_not(None))
        )
        or 0
    )


def receipts_for(session: Session, registration: Registration) -> list[Document]:
    """The registration's receipts (current ones and corrections), for its owner: one query."""
    return list(
        session.scalars(
            sa.select(Document)
            .join(
                Payment,
                sa.and_(Document.subject_type == "payment", Document.subject_id == Payment.id),
            )
            .where(
                Payment.registration_id == registration.id,
                Document.kind == DocumentKind.receipt,
                Document.owner_person_id == registration.person_id,
            )
            .order_by(Document.id)
        )
    )


def receipt_for_owner(session: Session, document_id: int, person_id: int) -> Document | None:
    """A receipt its owner may download; anyone else gets None (404)."""
    document = session.get(Document, document_id)
    if (
        document is None
        or document.kind != DocumentKind.receipt
        or document.owner_person_id is None
        or document.owner_person_id != person_id
    ):
        return None
    return document


def payment_for_person(session: Session, payment_id: int, person_id: int) -> Payment | None:
    payment = session.scalar(
        sa.select(Payment)
        .where(Payment.id == payment_id, Payment.person_id == person_id)
        .options(joinedload(Payment.registration), joinedload(Payment.event))
        .execution_options(populate_existing=True)
    )
    return payment


def parse_amount(raw: str, currency: str) -> int:
    """An amount typed in major units (5000 for ¥5,000; 12.50 for $12.50) as minor units."""
    text = (raw or "").strip()
    for sign in (",", "¥", "￥", "$", " "):
        text = text.replace(sign, "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise PaymentError(
            _l("Enter the amount as a number, for example 5000 or 12.50."), field="amount"
        )
    places = minor_units(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise PaymentError(
            _l("This currency allows at most %(places)s decimal places.", places=places),
            field="amount",
        )
    return int(minor)


# -- personal data ---------------------------------------------------------------------------

_PERSONAL_KEYS = ("customer_email", "customer_details", "customer", "shipping_details")


def personal_data(session: Session, person: Person) -> dict:
    """The person's payments and refunds (card and bank transfer), for their data download."""
    rows = session.scalars(
        sa.select(Payment)
        .where(Payment.person_id == person.id)
        .options(
            joinedload(Payment.event), joinedload(Payment.receipt), selectinload(Payment.refunds)
        )
        .order_by(Payment.id)
    ).unique()
    return {
        "payments": [
            {
                "id": p.id,
                "event": p.event.slug,
                "method": p.method.value,
                "state": p.state.value,
                "amount_minor": p.amount_minor,
                "received_minor": p.received_minor,
                "refunded_minor": p.refunded_minor,
                "currency": p.currency,
                "created_at": p.created_at.isoformat(),
                "paid_at": p.paid_at.isoformat() if p.paid_at else None,
                "receipt": p.receipt.reference if p.receipt else None,
                "refunds": [
                    {"amount_minor": r.amount_minor, "state": r.state.value} for r in p.refunds
                ],
            }
            for p in rows
        ]
    }


def forget_person(session: Session, person: Person) -> None:
    """Payments stay (the accounts need them) but lose the email and the customer details
    that Stripe's answers carried."""
    for payment in session.scalars(sa.select(Payment).where(Payment.person_id == person.id)):
        payment.provider_data = {
            k: v for k, v in (payment.provider_data or {}).items() if k not in _PERSONAL_KEYS
        }
        payment.request_params = {
            k: v for k, v in (payment.request_params or {}).items() if k not in _PERSONAL_KEYS
        }
        payment.note = ""
