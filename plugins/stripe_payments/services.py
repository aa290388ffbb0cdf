"""Paying by card through Stripe Checkout: the card provider of the payments ledger.

The rules (the ledger, ``portal.payments.services``, adds its own: one confirming function,
amount check, receipt once):

- **One open card attempt per registration.** ``begin_card_payment`` locks the event row and
  then the registration row, and reuses a live attempt (whatever the page's language), so two
  presses at the same moment (two tabs, a double click) give one attempt, one idempotency key,
  and so one Checkout Session.
- No database lock is held while Stripe is asked something: the attempt row is committed
  first, then Stripe is asked (``open_checkout``) with the attempt's idempotency key and exact
  parameters, then the answer is stored. A retry sends the same request and gets the same
  Checkout Session.
- **Only sessions the portal created confirm anything.** A webhook for a session id the
  portal has not stored confirms nothing: if its metadata names an attempt of ours still
  waiting for Stripe's answer, the webhook is answered 409 so that Stripe sends it again once
  the id is stored; otherwise the money is recorded as unmatched and flagged to the
  organisers (``unmatched_session``).
- **A refund is never lost.** ``charge.refunded`` is matched by the payment intent, or by the
  ``payment_id`` the portal puts in the charge's metadata; a refund of a payment the portal
  has not confirmed yet is answered 409, so Stripe retries it later.
- Amounts are integer minor units (JPY has none, USD is in cents), which is what Stripe takes.
- None of these functions commits; views, the CLI and ``reconcile`` commit.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from plugins.stripe_payments import sdk as stripe
from portal import audit, plugins
from portal.db import utcnow
from portal.events.models import Event
from portal.i18n import LANGUAGES
from portal.params import int_or_none
from portal.payments import providers as ledger_providers
from portal.payments import services as ledger
from portal.payments.models import (
    PAID_STATES,
    Payment,
    PaymentState,
    ProcessedWebhookEvent,
    Refund,
    RefundState,
)
from portal.payments.services import (
    NothingToPay,
    PaymentError,
    ProviderUnavailable,
    RefundError,
    complete_refund,
    confirm_payment,
    expire_payment,
    fail_payment,
    lock_payment,
)
from portal.payments.unmatched import UNKNOWN_PAID_SESSION
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState

PLUGIN = "stripe_payments"
P = PaymentState
R = RegistrationState

WEBHOOK_TOLERANCE = 300  # seconds a signed webhook stays valid
CHECKOUT_MIN = timedelta(minutes=30)  # Stripe's limits for a Checkout Session's expiry
CHECKOUT_MAX = timedelta(hours=24)
METHOD = "card"  # the provider's code in ``payments.method``
CONFLICT_TRIES = 8  # a concurrent request with the same idempotency key: wait for its answer


class CardNotAvailable(PaymentError):
    default_message = _l("Card payment is not available for this event.")


class RetryLater(Exception):
    """A webhook that cannot be applied yet: answered non-2xx so that Stripe sends it again."""


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


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


def reusable_attempt(session: Session, registration: Registration, now: datetime) -> Payment | None:
    """The registration's live card attempt for what it owes now, if any: one per
    registration, whatever the language of the page that started it."""
    return session.scalar(
        sa.select(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.method == METHOD,
            Payment.state == P.pending,
            Payment.superseded_at.is_(None),
            Payment.amount_minor == registration.total_minor,
            Payment.currency == registration.currency.upper(),
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
    The registration row is locked (after its event's), and its live attempt is reused, so
    concurrent presses get one attempt and one Checkout Session. Any other open attempt (for
    another amount, or too close to its expiry) is superseded: ``reconcile`` expires it at
    Stripe. The caller commits before ``open_checkout`` asks Stripe.
    """
    now = now or utcnow()
    if card_unavailable_reason() is not None:
        raise CardNotAvailable()
    registration = ledger.lock_registration(session, registration)
    if registration.state != R.pending_payment or registration.total_minor <= 0:
        raise NothingToPay()
    existing = reusable_attempt(session, registration, now)
    if existing is not None:
        return existing
    session.execute(
        sa.update(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.method == METHOD,
            Payment.state == P.pending,
            Payment.superseded_at.is_(None),
        )
        .values(superseded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    payment = ledger.pending_payment(
        registration,
        METHOD,
        actor=actor,
        language=language if language in LANGUAGES else None,
        idempotency_key=f"portal-checkout-{secrets.token_hex(16)}",
        expires_at=_checkout_expiry(registration, registration.event, now),
    )
    session.add(payment)
    session.flush()
    payment.request_params = _checkout_params(payment, registration, payment.language)
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
    for attempt in range(CONFLICT_TRIES):
        try:
            answer = stripe_client().v1.checkout.sessions.create(
                params=payment.request_params,
                options={"idempotency_key": payment.idempotency_key},
            )
            break
        except stripe.StripeError as exc:
            if exc.http_status == 409 and attempt + 1 < CONFLICT_TRIES:
                # Another press is creating the session with the same key right now: Stripe
                # answers with that session once it is done.
                time.sleep(0.2 * (attempt + 1))
                continue
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
        ledger._move(payment, P.failed)
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


def record_provider_refunds(session: Session, charge: dict) -> tuple[str, Payment | None]:
    """``charge.refunded``: the charge's refunded total as Stripe knows it.

    Refunds asked from the portal whose answer is still being recorded are matched first;
    the rest (refunds made in Stripe's dashboard) become new refund rows. The payment is found
    by its payment intent, or by the ``payment_id`` the portal put in the charge's metadata;
    a refund of a payment not confirmed yet raises RetryLater (Stripe sends it again).
    """
    payment_id = None
    if charge.get("payment_intent"):
        payment_id = session.scalar(
            sa.select(Payment.id).where(Payment.provider_payment_id == charge["payment_intent"])
        )
    named = int_or_none(str((charge.get("metadata") or {}).get("payment_id") or ""))
    if payment_id is None and named is not None:
        payment_id = session.scalar(
            sa.select(Payment.id).where(Payment.id == named, Payment.method == METHOD)
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
            ledger._apply_refund(session, payment, refund)
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
        ledger._apply_refund(session, payment, refund)
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
    if (
        not stamps
        or not (stamps[0].isascii() and stamps[0].isdigit())
        or int(stamps[0]) > time.time() + WEBHOOK_TOLERANCE
    ):
        raise stripe.SignatureVerificationError("Timestamp in the future", signature, payload)
    event = json.loads(payload.decode("utf-8"))
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise ValueError("not a Stripe event")
    return event


class UnknownSession(Exception):
    """A Checkout Session the portal did not create (no stored id)."""


def _payment_for_session(session: Session, obj: dict) -> Payment:
    """The attempt whose stored session id this is. Only such sessions confirm anything.

    Raises RetryLater when the metadata names one of our card attempts still waiting for
    Stripe's answer (Stripe sends the event again; by then the id is stored), and
    UnknownSession otherwise.
    """
    payment = session.scalar(sa.select(Payment).where(Payment.provider_session_id == obj["id"]))
    if payment is not None:
        return payment
    payment_id = int_or_none(str((obj.get("metadata") or {}).get("payment_id") or ""))
    if payment_id is not None:
        attempt = session.get(Payment, payment_id)
        if (
            attempt is not None
            and attempt.method == METHOD
            and attempt.state == P.pending
            and attempt.provider_session_id is None
        ):
            raise RetryLater("the portal has not stored this session yet")
    raise UnknownSession(obj["id"])


def _record_unmatched(session: Session, obj: dict) -> Payment | None:
    """Money taken through a session the portal did not create: if it names one of our
    registrations, the ledger keeps it flagged (to be refunded); nothing is confirmed."""
    metadata = obj.get("metadata") or {}
    raw = str(metadata.get("registration_id") or "")
    if not raw:
        raw = str(obj.get("client_reference_id") or "").removeprefix("registration-")
    registration_id = int_or_none(raw)
    registration = session.get(Registration, registration_id) if registration_id else None
    current_app.logger.warning(
        "Stripe: a paid Checkout Session %s the portal did not create (registration %s)",
        obj.get("id"),
        raw or "-",
    )
    if registration is None:
        return None
    return ledger.record_unmatched(
        session,
        registration,
        method=METHOD,
        received_minor=int(obj.get("amount_total") or 0),
        received_currency=obj.get("currency") or "",
        provider_session_id=obj["id"],
        provider_payment_id=obj.get("payment_intent"),
        provider_data=obj,
    )


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
        _expire(session, payment_id, obj)
        return "expired"
    return "open"


def _expire(session: Session, payment_id: int, obj: dict) -> None:
    payment = session.get(Payment, payment_id)
    release = settings(payment.event).get("release_seat_when_checkout_expires", True)
    expire_payment(
        session,
        payment_id,
        provider_data=obj,
        release_seat=bool(release),
        reason="card payment session expired",
    )


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
    paid_kinds = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
    if kind.startswith("checkout.session.") and obj.get("id"):
        try:
            payment = _payment_for_session(session, obj)
        except UnknownSession:
            payment = None
            outcome = "unknown_session"
            if kind in paid_kinds and _paid(obj):
                payment = _record_unmatched(session, obj)
                # naming none of ours: kept as this event, listed to administrators
                outcome = "unmatched_session" if payment is not None else UNKNOWN_PAID_SESSION
        if payment is None or outcome == "unmatched_session":
            pass  # confirms nothing
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
            _expire(session, payment.id, obj)
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
                Payment.method == METHOD,
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
            Payment.method == METHOD,
            Payment.state == P.pending,
            Payment.provider_session_id.is_(None),
            Payment.expires_at <= now,
        )
    ).all()
    for payment in rows:
        ledger._move(payment, P.expired)
        audit.record(session, None, "payment", payment.id, "expired", reason="never opened")
    return len(rows)


# -- the provider ----------------------------------------------------------------------------


def reconcile_one(session: Session, payment_id: int) -> str | None:
    """Ask Stripe about one pending attempt (no lock held meanwhile) and settle it.

    Paid sessions are confirmed and expired ones expired, through the same functions the
    webhook uses; an open session the registration no longer waits for is expired at Stripe.
    Commits.
    """
    payment = session.get(Payment, payment_id)
    session_id = payment.provider_session_id
    superseded = payment.superseded_at is not None
    session.commit()
    if not session_id:
        return None  # never reached Stripe: ``housekeeping`` ends it when its time is up
    try:
        obj = retrieve_session(session_id)
        if obj.get("status") == "open" and superseded:
            obj = stripe_client().v1.checkout.sessions.expire(session_id).to_dict()
    except stripe.StripeError as exc:
        note_provider_error(session, payment_id, exc)
        session.commit()
        return "provider_error"
    outcome = settle_from_session(session, payment_id, obj, source="reconcile")
    session.commit()
    return outcome


class CardProvider(ledger_providers.PaymentProvider):
    """Card payment through Stripe Checkout."""

    code = METHOD
    plugin = PLUGIN
    label = _l("Card payment")
    refund_online = True
    checks_pending = True

    def unavailable_reason(self, event) -> str | None:
        return card_unavailable_reason()

    def payment_method(self, event, registration):
        from flask import url_for

        from portal.registration.types import PaymentMethod

        if card_unavailable_reason() is not None:
            return None
        return PaymentMethod(
            code=METHOD,
            label=_l("Pay by card"),
            description=_l("Visa, Mastercard, American Express, JCB and others, through Stripe."),
            url=url_for("stripe_payments.card_pay", reg_id=registration.id),
        )

    def start(self, session, registration, *, language: str, actor=None):
        return begin_card_payment(session, registration, language=language, actor=actor)

    def check(self, session, payment) -> str:
        return reconcile_one(session, payment.id)

    def refund(self, session, refund, *, actor=None):
        return send_refund(session, refund, actor=actor)

    def cancel_on_full_refund(self, event) -> bool:
        return bool(settings(event).get("cancel_on_full_refund", True))

    def housekeeping(self, session) -> int:
        return expire_abandoned_attempts(session)


provider = CardProvider()
