"""The payments ledger: confirming, failing, expiring and refunding payments; receipts.

The rules every provider gets for free:

- ``confirm_payment`` is the only function that confirms a payment (card webhook, return page,
  reconcile, an organiser recording a bank transfer or money taken at the door). It locks the
  event row and then the payment row, returns early when the payment is already confirmed,
  checks the amount and currency against what the registration owes (a mismatch is flagged
  to the organisers and confirms nothing), confirms the registration through the registration
  services, issues the receipt once and emails it as a PDF attachment.
- A payment for a registration that is already paid is kept, flagged ``already_paid`` (to be
  refunded) and confirms nothing; the participant is told so.
- Amounts are integer minor units (JPY has none, USD is in cents).
- None of these functions commits; views, the CLI and ``reconcile`` commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from portal import audit
from portal.accounts.models import Person, Sector
from portal.db import utcnow
from portal.documents import services as documents
from portal.documents.models import Document, DocumentKind
from portal.errors import UserError
from portal.events.models import Event
from portal.i18n import LANGUAGES, BilingualText, format_money, format_person_name, minor_units
from portal.mail.services import queue_email
from portal.payments import providers
from portal.payments.models import (
    MOVES,
    PAID_STATES,
    Payment,
    PaymentState,
    ProcessedWebhookEvent,
    ReceiptAddressee,
    Refund,
    RefundState,
)
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState

P = PaymentState
R = RegistrationState


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
    "already_paid": _l(
        "The registration was already paid: this is a second payment, to be refunded."
    ),
    "registration_cancelled": _l("The registration had been cancelled when this payment arrived."),
    "no_place": _l(
        "The payment arrived after the deadline and the place had gone to someone else."
    ),
    "not_awaiting_payment": _l("The registration was not waiting for a payment."),
    "paid_after_closing": _l(
        "The provider reported a payment for an attempt that had already ended."
    ),
    "unmatched_session": _l(
        "A payment arrived for a checkout the portal did not create; nothing was confirmed."
    ),
}


# -- errors ----------------------------------------------------------------------------------


class PaymentError(UserError):
    """A refused payment action; ``message`` is translated, ``field`` names the form field."""

    default_message = _l("This payment action is not possible.")


class ProviderUnavailable(PaymentError):
    default_message = _l(
        "The card payment service could not be reached. Nothing has been charged and your "
        "place is still held. Please try again in a few minutes, or choose another way to pay."
    )


class NothingToPay(PaymentError):
    default_message = _l("This registration has nothing to pay at the moment.")


class RefundError(PaymentError):
    default_message = _l("This refund is not possible.")


class PaymentTransitionError(PaymentError):
    default_message = _l("This payment cannot change that way in its current state.")


class RetryLater(Exception):
    """A webhook that cannot be applied yet (e.g. a refund of a payment not yet confirmed)."""


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
            action=f"paid_by_{payment.method}",
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
    company, name = receipt_recipient(session, registration, lang)
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
        recipient_name=name,
        recipient_company=company,
        owner_person_id=person.id,
        paid_at=payment.paid_at,
        actor=actor,
    )
    payment.receipt_id = document.id
    if person.email:
        queue_email(
            session,
            person.email,
            "payments/receipt",
            lang,
            attachments=[documents.pdf_attachment(document)],
            payment=payment,
            registration=registration,
            event=event,
            person=person,
            document=document,
            amount=format_money(payment.received_minor, payment.currency, lang),
            method=providers.label(payment.method),
            receipt_url=registrations.external_url(
                "payments.receipt_pdf", lang_code=lang, document_id=document.id
            ),
            registration_url=registrations.external_url(
                "registration.my_registration", lang_code=lang, reg_id=registration.id
            ),
        )
    return document


def receipt_recipient(session: Session, registration: Registration, lang: str) -> tuple[str, str]:
    """(company, name) for the receipt's 宛名: what the participant chose before issue (a
    company, printed with 御中, or a person, printed with 様), else their own name (and their
    company when they work for one)."""
    chosen = session.get(ReceiptAddressee, registration.id)
    if chosen is not None and chosen.name.strip():
        if chosen.kind == "company":
            return chosen.name.strip(), ""
        return "", chosen.name.strip()
    person = registration.person
    company = person.affiliation if person.sector == Sector.company else ""
    return company, format_person_name(person, lang)


def set_receipt_addressee(
    session: Session, registration: Registration, *, kind: str, name: str, actor=None
) -> ReceiptAddressee:
    """The participant's choice of 宛名 for their receipt, before it is issued.

    An issued receipt is never changed, so the choice is refused once the registration has
    one (the organisers can issue a correction).
    """
    name = (name or "").strip()
    if kind not in ("company", "person"):
        raise PaymentError(_l("Choose a company or a person."), field="kind")
    if not name:
        raise PaymentError(_l("Enter the name to print on the receipt."), field="name")
    if len(name) > 200:
        raise PaymentError(_l("Please keep it under 200 characters."), field="name")
    if receipts_for(session, registration):
        raise PaymentError(
            _l("Your receipt has already been issued; please ask the office for a correction."),
            field="name",
        )
    row = session.get(ReceiptAddressee, registration.id)
    if row is None:
        row = ReceiptAddressee(registration_id=registration.id)
        session.add(row)
    row.kind, row.name = kind, name
    session.flush()
    audit.record(
        session, actor, "registration", registration.id, "receipt_name_set", kind=kind, name=name
    )
    return row


# -- payments recorded by an organiser (bank transfer, at the door) ---------------------------


class NotAwaitingPayment(PaymentError):
    default_message = _l("This registration is not waiting for a payment.")


def lock_registration(session: Session, registration: Registration) -> Registration:
    """The registration re-read under a row lock, after its event's lock (the order every
    registration change takes), so that two payment starts for it run one after the other."""
    registrations.lock_event(session, registration.event)
    return session.execute(
        sa.select(Registration)
        .where(Registration.id == registration.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def pending_payment(
    registration: Registration, method: str, *, actor, language: str | None = None, **fields
) -> Payment:
    """A new payment of ``method`` for what the registration owes, pending, not yet added to
    the session: in ``language`` (by default the person's, else the event's), made by
    ``actor``, with the provider's own ``fields`` (a note, an idempotency key, an expiry)."""
    return Payment(
        registration_id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        method=method,
        state=P.pending,
        amount_minor=registration.total_minor,
        currency=registration.currency.upper(),
        language=language or _language(registration.person, registration.event),
        created_by_id=getattr(actor, "id", None),
        **fields,
    )


def record_payment(
    session: Session,
    registration: Registration,
    *,
    method: str,
    actor,
    amount_minor: int,
    note: str = "",
    now: datetime | None = None,
) -> Payment:
    """An organiser saw the money arrive (bank transfer) or took it (at the door): a payment of
    that method, confirmed at once through ``confirm_payment``.

    The amount received is what the organiser typed; when it differs from what the
    registration owes, the payment is recorded and flagged and the registration stays pending.
    """
    registration = lock_registration(session, registration)
    if registration.state != R.pending_payment or registration.total_minor <= 0:
        raise NotAwaitingPayment(field="amount")
    if amount_minor <= 0:
        raise PaymentError(_l("Enter an amount greater than zero."), field="amount")
    payment = pending_payment(registration, method, actor=actor, note=(note or "").strip()[:1000])
    session.add(payment)
    session.flush()
    audit.record(
        session,
        actor,
        "payment",
        payment.id,
        f"{method}_recorded",
        registration_id=registration.id,
        amount_minor=amount_minor,
        note=payment.note,
    )
    return confirm_payment(
        session,
        payment.id,
        received_minor=amount_minor,
        received_currency=registration.currency,
        source="organiser",
        actor=actor,
        now=now,
    )


def record_unmatched(
    session: Session,
    registration: Registration,
    *,
    method: str,
    received_minor: int,
    received_currency: str,
    provider_session_id: str,
    provider_payment_id: str | None,
    provider_data: dict,
) -> Payment:
    """Money the provider took for a checkout the portal never created (a Payment Link, another
    app on the same account) that names one of our registrations: kept in the ledger so the
    organisers can refund it, flagged, and nothing is confirmed or receipted."""
    payment = Payment(
        registration_id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        method=method,
        state=P.succeeded,
        amount_minor=received_minor,
        currency=(received_currency or registration.currency).upper(),
        received_minor=received_minor,
        received_currency=(received_currency or "").upper(),
        language=_language(registration.person, registration.event),
        provider_session_id=provider_session_id,
        provider_payment_id=provider_payment_id,
        provider_data=provider_data,
        paid_at=utcnow(),
        note="a checkout the portal did not create",
    )
    session.add(payment)
    session.flush()
    _flag(session, payment, "unmatched_session", session_id=provider_session_id)
    return payment


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
            "payments/payment_failed",
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
    release_seat: bool = False,
    reason: str = "payment session expired",
    now: datetime | None = None,
) -> Payment:
    """A payment attempt ended unpaid (e.g. its Checkout Session expired): pending → expired.

    With ``release_seat`` (the card provider's setting ``release_seat_when_checkout_expires``)
    the registration, if it is still waiting for this payment and has no other open attempt,
    is cancelled by the registration services, which give the seat to the first person on the
    waiting list.
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
    if (
        release_seat
        and payment.superseded_at is None
        and registration.state == R.pending_payment
        and _other_open_attempts(session, payment, now) == 0
    ):
        registrations.cancel(
            session,
            registration,
            actor=None,
            reason=reason,
            now=now,
            action="payment_expired",
            email="expired",
        )
    return payment


def supersede_open_attempts(session: Session, registration: Registration, now=None) -> int:
    """The registration no longer waits for its open card attempts (paid otherwise, cancelled
    or changed): mark them so they are not reused and ``reconcile`` ends them at the provider."""
    now = now or utcnow()
    result = session.execute(
        sa.update(Payment)
        .where(
            Payment.registration_id == registration.id,
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

    A provider with online refunds (card) then sends it (``send_refund``); otherwise (bank
    transfer, money taken at the door) the organisers pay it back and it is recorded at once.
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
    if not providers.provider(payment.method).refund_online:
        complete_refund(session, refund.id, None, actor=actor)
    return refund


def send_refund(session: Session, refund: Refund, *, actor=None) -> Refund:
    """Send a pending refund through its payment's provider (same idempotency key each time)."""
    if refund.state != RefundState.pending:
        return refund
    return providers.provider(refund.payment.method).refund(session, refund, actor=actor)


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
            "payments/refunded",
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
        and providers.provider(payment.method).cancel_on_full_refund(event)
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
    if method and method in providers.all_providers():
        stmt = stmt.where(Payment.method == method)
    if flagged == "1":
        stmt = stmt.where(Payment.flag.is_not(None))
    if q and q.strip():
        stmt = stmt.where(registrations.person_search(q))
    return stmt.order_by(Payment.created_at.desc(), Payment.id.desc())


def event_payment_rows(session: Session, event: Event, **filters) -> list[Payment]:
    """Every payment of the event's list (``event_payments``), loaded: the CSV export."""
    return list(session.scalars(event_payments(event, **filters)).unique())


def payment_of_event(session: Session, event: Event, payment_id: int) -> Payment | None:
    """The event's payment with this id, read afresh (None when it belongs elsewhere)."""
    return session.scalar(
        sa.select(Payment)
        .where(Payment.id == payment_id, Payment.event_id == event.id)
        .execution_options(populate_existing=True)
    )


@dataclass
class Total:
    method: str
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
    return [Total(str(m), c, int(n), int(r), int(f)) for m, c, n, r, f in rows]


def has_payments(session: Session, event: Event) -> bool:
    return (
        session.scalar(sa.select(Payment.id).where(Payment.event_id == event.id).limit(1))
        is not None
    )


def receipt_addressee(session: Session, registration: Registration) -> ReceiptAddressee | None:
    return session.get(ReceiptAddressee, registration.id)


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
                "method": p.method,
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
    that the provider's answers carried."""
    for payment in session.scalars(sa.select(Payment).where(Payment.person_id == person.id)):
        payment.provider_data = {
            k: v for k, v in (payment.provider_data or {}).items() if k not in _PERSONAL_KEYS
        }
        payment.request_params = {
            k: v for k, v in (payment.request_params or {}).items() if k not in _PERSONAL_KEYS
        }
        payment.note = ""
    forget_webhook_payloads(session, person)


def forget_webhook_payloads(session: Session, person: Person) -> None:
    """Stored webhook events of the person's payments lose the customer details; any other
    stored event that mentions the person's email address loses the address."""
    from portal.scrub import contains, scrub_json

    emails = {e for e in {person.email, getattr(person.user, "email", None)} if e}
    payment_ids = set(session.scalars(sa.select(Payment.id).where(Payment.person_id == person.id)))
    conditions = [ProcessedWebhookEvent.payment_id.in_(payment_ids)]
    conditions += [contains(ProcessedWebhookEvent.payload, e) for e in emails]
    for record in session.scalars(sa.select(ProcessedWebhookEvent).where(sa.or_(*conditions))):
        own = record.payment_id in payment_ids
        record.payload = scrub_json(record.payload or {}, emails, _PERSONAL_KEYS if own else ())
