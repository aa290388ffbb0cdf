"""The one place a registration's state changes: ``_move`` checks the move against
``ALLOWED_MOVES``, applies it (payment deadline, waiting-list and check-in times), writes the
audit entry, queues the email ``mail/registration/<name>`` in the person's language and calls
the event's ``registration_changed`` hook. None of it commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.orm import Session

from portal import audit, plugins
from portal.db import insert_now, utcnow
from portal.events.models import Event
from portal.i18n import LANGUAGES
from portal.links import external_url
from portal.mail.services import queue_email
from portal.pagecache import SCOPE_OPTION
from portal.registration.errors import TransitionNotAllowed
from portal.registration.fees import settings_for
from portal.registration.models import (
    Registration,
    RegistrationState,
)
from portal.registration.seats import S, waitlist_position

# Which state a registration may move to from each state (None: a new registration).
ALLOWED_MOVES: dict[RegistrationState | None, set[RegistrationState]] = {
    None: {S.confirmed, S.pending_payment, S.waitlisted},
    S.cancelled: {S.confirmed, S.pending_payment, S.waitlisted},
    S.pending_payment: {S.confirmed, S.cancelled, S.waitlisted},
    S.confirmed: {S.cancelled, S.attended, S.waitlisted},
    S.waitlisted: {S.confirmed, S.pending_payment, S.cancelled},
    S.attended: {S.confirmed},
}


def _deadline(session: Session, event: Event, now: datetime) -> datetime:
    deadline = now + timedelta(days=settings_for(session, event).payment_days)
    if now < event.starts_at < deadline:
        deadline = event.starts_at
    return deadline


def _email_payment_methods(registration: Registration) -> list:
    """The ways to pay offered on the registration page, for the payment-pending email."""
    from flask import has_request_context

    from portal.registration.fees import payment_methods

    if not has_request_context():
        with current_app.test_request_context(
            "/", base_url=current_app.config.get("BASE_URL") or None
        ):
            return payment_methods(registration.event, registration)
    return payment_methods(registration.event, registration)


def _email(session: Session, registration: Registration, template: str, **context) -> None:
    person = registration.person
    if not person or not person.email:
        return
    lang = person.preferred_language if person.preferred_language in LANGUAGES else "ja"
    context.setdefault(
        "url",
        external_url("registration.my_registration", lang_code=lang, reg_id=registration.id),
    )
    if registration.state == S.waitlisted and "position" not in context:
        context["position"] = waitlist_position(session, registration)
    if registration.state == S.pending_payment and "payment_methods" not in context:
        # How to pay (bank details, the reference to quote) as the payment plugins say it.
        context["payment_methods"] = _email_payment_methods(registration)
        if any(m.code == "bank_transfer" for m in context["payment_methods"]):
            own = plugins.settings(registration.event, "bank_transfer").get("bank_account")
            context.setdefault(
                "bank_account",
                (own or "").strip() or (current_app.config.get("ISSUER_BANK_ACCOUNT") or ""),
            )
    from portal.tickets.services import ticket_email_parts

    ticket = context.pop("ticket", None)
    context.update(ticket_email_parts(session, registration, template, lang, ticket))
    queue_email(
        session,
        person.email,
        f"registration/{template}",
        lang,
        registration=registration,
        event=registration.event,
        person=person,
        **context,
    )


def _notify(
    session: Session,
    registration: Registration,
    old: RegistrationState | None,
    *,
    actor,
    action: str,
    reason: str = "",
    email: str | None = None,
    **data,
) -> None:
    """Audit entry, email and hook for a change already applied to ``registration``."""
    session.flush()
    new = registration.state
    audit.record(
        session,
        actor,
        "registration",
        registration.id,
        action,
        old=old.value if old else None,
        new=new.value,
        reason=reason,
        **data,
    )
    from portal.tickets.services import ensure_ticket

    ticket = ensure_ticket(session, registration, actor=actor, new=old is None)
    if email:
        _email(session, registration, email, reason=reason, ticket=ticket)
    plugins.event_hooks(registration.event).registration_changed(
        registration=registration, old=old, new=new
    )


def _insert(session: Session, registration: Registration, now: datetime) -> None:
    """Write a new registration with one plain INSERT that names its event
    (``db.insert_now``, ``SCOPE_OPTION``: only the event's pages are rendered again)."""
    for relation, column in _RELATED:  # the foreign keys the ORM would copy at its flush
        related = getattr(registration, relation)
        if related is not None:
            setattr(registration, column, related.id)
    registration.created_at = registration.updated_at = now
    insert_now(session, registration, **{SCOPE_OPTION: f"event:{registration.event_id}"})


_RELATED = (
    ("event", "event_id"),
    ("person", "person_id"),
    ("user", "user_id"),
    ("fee_category", "fee_category_id"),
)


def _move(
    session: Session,
    registration: Registration,
    new: RegistrationState,
    *,
    actor,
    action: str,
    reason: str = "",
    email: str | None = None,
    now: datetime | None = None,
    **data,
) -> Registration:
    """Check and apply one state move, then audit, email and call the hook."""
    now = now or utcnow()
    old = registration.state if registration.id is not None else None
    if new not in ALLOWED_MOVES.get(old, set()):
        raise TransitionNotAllowed()
    registration.state = new
    if new == S.waitlisted:
        registration.waitlisted_at = now
    if new == S.pending_payment:
        registration.payment_deadline = _deadline(session, registration.event, now)
    elif new in (S.confirmed, S.waitlisted):
        registration.payment_deadline = None
    if new == S.attended:
        registration.checked_in_at = now
    elif old == S.attended:
        registration.checked_in_at = None
    if registration.id is None:
        _insert(session, registration, now)
    else:
        session.add(registration)
    _notify(
        session, registration, old, actor=actor, action=action, reason=reason, email=email, **data
    )
    return registration


def _seat_state(registration: Registration) -> RegistrationState:
    """The state a registration gets with a seat: free ones are confirmed at once."""
    return S.confirmed if registration.total_minor == 0 else S.pending_payment
