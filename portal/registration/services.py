"""Registration: queries and one function per state change.

States: pending_payment (支払い待ち), confirmed (確定), waitlisted (キャンセル待ち),
cancelled (取消) and attended (出席). Every public function that changes a registration

1. serialises on the event (``lock_event``: ``SELECT … FOR UPDATE`` of the event row on
   PostgreSQL; on SQLite every writing transaction already holds the write lock from BEGIN
   IMMEDIATE), so the capacity check and the write cannot interleave with another request;
2. checks that the move is allowed (``ALLOWED_MOVES``), else raises ``TransitionNotAllowed``;
3. writes an audit entry (``subject_type="registration"``; who, when, old, new, reason);
4. queues the email ``mail/registration/<name>`` in the person's preferred language;
5. calls ``event_hooks(event).registration_changed(registration=, old=, new=)``
   (``old`` is None for a new registration; ``old == new`` for a change of attendance mode).

None of them commits: the caller (view or CLI command) commits once.

Capacity: ``Event.capacity(mode)`` (None = unlimited). Confirmed and attended registrations,
and pending-payment ones whose payment deadline has not passed, hold a seat. A seat that
becomes free goes to the first person waiting in that mode (``promote_from_waitlist``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from portal import audit, plugins
from portal.accounts.models import Person, Role, Sector
from portal.db import utcnow
from portal.events.models import AttendanceMode, Event, EventStatus
from portal.i18n import LANGUAGES, BilingualText
from portal.mail.services import queue_email
from portal.registration.models import (
    FeeCategory,
    Registration,
    RegistrationSettings,
    RegistrationState,
)
from portal.registration.types import PaymentMethod, PriceLine, RegistrationField

S = RegistrationState
DEFAULT_PAYMENT_DAYS = 3
SEAT_STATES = (S.confirmed, S.attended)

STATE_LABELS = {
    S.pending_payment: _l("Awaiting payment"),
    S.confirmed: _l("Place confirmed"),
    S.waitlisted: _l("Waiting list"),
    S.cancelled: _l("Cancelled registration"),
    S.attended: _l("Attended"),
}

# What each history (audit) entry's action means.
ACTION_LABELS = {
    "registered": _l("Registered by the participant"),
    "reregistered": _l("Registered again"),
    "added_by_organiser": _l("Added by an organiser"),
    "promoted": _l("Moved up from the waiting list"),
    "confirmed": _l("Payment received"),
    "marked_paid": _l("Marked as paid"),
    "waitlisted": _l("Moved to the waiting list"),
    "cancelled": _l("Registration cancelled"),
    "expired": _l("Payment deadline passed"),
    "checked_in": _l("Checked in"),
    "check_in_undone": _l("Check-in undone"),
    "mode_switched": _l("Attendance mode changed"),
    "state_changed_by_organiser": _l("State changed by an organiser"),
    "repriced": _l("Price recalculated"),
}

MODE_LABELS = {
    AttendanceMode.onsite: _l("Attending on site"),
    AttendanceMode.online: _l("Attending online"),
}

SECTOR_LABELS = {
    Sector.company: _l("Company"),
    Sector.university: _l("University"),
    Sector.government_other: _l("Government and other"),
}

# Which state a registration may move to from each state (None: a new registration).
ALLOWED_MOVES: dict[RegistrationState | None, set[RegistrationState]] = {
    None: {S.confirmed, S.pending_payment, S.waitlisted},
    S.cancelled: {S.confirmed, S.pending_payment, S.waitlisted},
    S.pending_payment: {S.confirmed, S.cancelled, S.waitlisted},
    S.confirmed: {S.cancelled, S.attended, S.waitlisted},
    S.waitlisted: {S.confirmed, S.pending_payment, S.cancelled},
    S.attended: {S.confirmed},
}


# -- errors ----------------------------------------------------------------------------------


class RegistrationError(Exception):
    """A refused registration change; ``message`` is translated, ``field`` names the form field."""

    default_message = _l("This change is not possible.")

    def __init__(self, message=None, field: str | None = None):
        self.message = message if message is not None else self.default_message
        self.field = field
        super().__init__(str(self.message))


class TransitionNotAllowed(RegistrationError):
    default_message = _l("This registration cannot be changed that way in its current state.")


class RegistrationClosed(RegistrationError):
    default_message = _l("Registration for this event is closed.")


class InvalidChoice(RegistrationError):
    default_message = _l("Please choose one of the options offered.")


class NoPlaceAvailable(RegistrationError):
    default_message = _l("There are no places left for this attendance mode.")


class MembershipRequired(RegistrationError):
    default_message = _l("This fee category is for members only.")


class AlreadyRegistered(RegistrationError):
    default_message = _l("You are already registered for this event.")

    def __init__(self, registration: Registration, message=None):
        super().__init__(message)
        self.registration = registration


# -- settings, categories, hooks -------------------------------------------------------------


def settings_for(session: Session, event: Event) -> RegistrationSettings:
    row = session.get(RegistrationSettings, event.id)
    return row or RegistrationSettings(event_id=event.id, payment_days=DEFAULT_PAYMENT_DAYS)


def update_settings(session: Session, event: Event, *, payment_days: int, actor) -> None:
    """Store the event's registration settings (payment deadline in days)."""
    if payment_days < 1 or payment_days > 60:
        raise RegistrationError(_l("Enter a number of days from 1 to 60."), field="payment_days")
    row = session.get(RegistrationSettings, event.id)
    if row is None:
        row = RegistrationSettings(event_id=event.id)
        session.add(row)
    old = row.payment_days
    row.payment_days = payment_days
    session.flush()
    audit.record(
        session, actor, "event", event.id, "registration_settings", old=old, new=payment_days
    )


def fee_categories(session: Session, event: Event, active_only: bool = True) -> list[FeeCategory]:
    stmt = sa.select(FeeCategory).where(FeeCategory.event_id == event.id)
    if active_only:
        stmt = stmt.where(FeeCategory.is_active.is_(True))
    return list(session.scalars(stmt.order_by(FeeCategory.position, FeeCategory.id)))


def registration_fields(event: Event) -> list[RegistrationField]:
    """Extra form fields from the plugins enabled on the event."""
    return plugins.call_event_hook("registration_fields", event)


def payment_methods(event: Event, registration: Registration) -> list[PaymentMethod]:
    """Ways to pay offered by the plugins enabled on the event."""
    return plugins.collect(
        plugins.event_hooks(event).payment_methods(event=event, registration=registration)
    )


def is_member(user, series) -> bool:
    """The app-wide ``member_status`` hook decides; without an answer, the ``member`` role."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    answer = plugins.manager().hook.member_status(user=user, series=series)
    if answer is not None:
        return bool(answer)
    return user.has_role(Role.member, series.id)


def _label_dict(label: Any) -> dict[str, str]:
    """A price line's label in both languages, for the stored snapshot."""
    if isinstance(label, BilingualText | dict):
        return BilingualText.of(label).as_dict()
    if isinstance(label, str):
        return {"ja": label, "en": label}
    out = {}
    for lang in LANGUAGES:
        with force_locale(lang):
            out[lang] = str(label)
    return out


def _category_line(category: FeeCategory, event: Event, now: datetime) -> PriceLine:
    currency = event.series.currency
    amount = category.price_at(now)
    if category.is_early_bird_at(now):
        label = {}
        for lang in LANGUAGES:
            with force_locale(lang):
                label[lang] = str(
                    _l(
                        "%(category)s (early-bird price)",
                        category=category.name.get(lang, event.series.default_language),
                    )
                )
        label = BilingualText.of(label)
    else:
        label = category.name
    return PriceLine(
        code=f"fee:{category.code}", label=label, amount_minor=amount, currency=currency
    )


def compute_price_lines(registration: Registration, now: datetime | None = None) -> list[PriceLine]:
    """The fee category's price (early-bird until its date) plus the plugins' price lines."""
    now = now or utcnow()
    event = registration.event
    currency = event.series.currency
    lines: list[PriceLine] = []
    if registration.fee_category is not None:
        lines.append(_category_line(registration.fee_category, event, now))
    extra = plugins.collect(plugins.event_hooks(event).price_lines(registration=registration))
    for line in extra:
        if line.currency.upper() != currency.upper():
            raise ValueError(
                f"price line {line.code!r} is in {line.currency}, the event charges {currency}"
            )
        lines.append(line)
    return lines


def _apply_prices(registration: Registration, now: datetime) -> None:
    lines = compute_price_lines(registration, now)
    registration.currency = registration.event.series.currency
    registration.price_lines = [
        {
            "code": line.code,
            "label": _label_dict(line.label),
            "amount_minor": int(line.amount_minor),
            "currency": line.currency.upper(),
        }
        for line in lines
    ]
    registration.total_minor = sum(int(line.amount_minor) for line in lines)


# -- validation of choices -------------------------------------------------------------------


def _resolve_mode(event: Event, value) -> AttendanceMode:
    if not value and len(event.attendance_modes) == 1:
        return event.attendance_modes[0]
    try:
        mode = AttendanceMode(str(value))
    except ValueError:
        mode = None
    if mode not in event.attendance_modes:
        raise InvalidChoice(
            _l("Please choose how you will attend this event."), field="attendance_mode"
        )
    return mode


def _resolve_category(
    session: Session, event: Event, value, *, active_only: bool = True
) -> FeeCategory | None:
    if isinstance(value, FeeCategory):
        category = value
    elif value in (None, ""):
        exists = session.scalar(
            sa.select(sa.func.count())
            .select_from(FeeCategory)
            .where(FeeCategory.event_id == event.id, FeeCategory.is_active.is_(True))
        )
        if exists:
            raise InvalidChoice(_l("Please choose a fee category."), field="fee_category")
        return None
    else:
        raw = str(value)
        category = session.get(FeeCategory, int(raw)) if raw.isdigit() else None
    if (
        category is None
        or category.event_id != event.id
        or (active_only and not category.is_active)
    ):
        raise InvalidChoice(
            _l("Please choose one of the fee categories offered for this event."),
            field="fee_category",
        )
    return category


_TRUE = {"1", "y", "yes", "on", "true"}


def clean_answers(
    fields: list[RegistrationField], raw: dict | None, enforce_required: bool = True
) -> dict:
    """Keep only the answers to the offered fields, typed; unknown keys are dropped."""
    raw = raw or {}
    out: dict = {}
    for f in fields:
        value = raw.get(f.name)
        if f.kind == "checkbox":
            value = value is True or str(value).strip().lower() in _TRUE
        elif f.kind == "select":
            value = "" if value is None else str(value)
            if value and value not in {str(v) for v, _label in f.choices}:
                raise InvalidChoice(field=f.name)
        else:
            value = "" if value is None else str(value).strip()[:1000]
        if enforce_required and f.required and not value:
            raise RegistrationError(_l("This field is required."), field=f.name)
        out[f.name] = value
    return out


# -- seats -----------------------------------------------------------------------------------


def _holds_seat(now: datetime):
    R = Registration
    return sa.or_(
        R.state.in_(SEAT_STATES),
        sa.and_(
            R.state == S.pending_payment,
            sa.or_(R.payment_deadline.is_(None), R.payment_deadline > now),
        ),
    )


def taken_seats(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    now: datetime | None = None,
    exclude_id: int | None = None,
) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.attendance_mode == mode,
            _holds_seat(now or utcnow()),
        )
    )
    if exclude_id is not None:
        stmt = stmt.where(Registration.id != exclude_id)
    return session.scalar(stmt) or 0


def seats_left(session: Session, event: Event, now: datetime | None = None) -> dict:
    """Free seats per attendance mode in one query (None = unlimited), for display."""
    now = now or utcnow()
    rows = session.execute(
        sa.select(Registration.attendance_mode, sa.func.count())
        .where(Registration.event_id == event.id, _holds_seat(now))
        .group_by(Registration.attendance_mode)
    ).all()
    taken = {mode: n for mode, n in rows}
    out = {}
    for mode in event.attendance_modes:
        cap = event.capacity(mode)
        out[mode] = None if cap is None else max(0, cap - taken.get(mode, 0))
    return out


@dataclass
class _Locked:
    status: EventStatus
    capacity: dict = field(default_factory=dict)


def lock_event(session: Session, event: Event) -> _Locked:
    """Serialise registration changes of one event; returns its fresh status and capacities.

    PostgreSQL: ``SELECT … FOR UPDATE`` on the event row, held until the transaction ends.
    SQLite: the writing transaction began with BEGIN IMMEDIATE, so it holds the write lock.
    """
    row = session.execute(
        sa.select(Event.status, Event.capacity_onsite, Event.capacity_online)
        .where(Event.id == event.id)
        .with_for_update()
    ).one()
    return _Locked(
        status=EventStatus(row.status),
        capacity={
            AttendanceMode.onsite: row.capacity_onsite,
            AttendanceMode.online: row.capacity_online,
        },
    )


def _free(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    locked: _Locked,
    now: datetime,
    exclude_id: int | None = None,
) -> int | None:
    cap = locked.capacity.get(mode)
    if cap is None:
        return None
    return cap - taken_seats(session, event, mode, now, exclude_id)


def _refresh(session: Session, registration: Registration) -> None:
    """Re-read a registration after taking the lock (another request may have changed it)."""
    if registration.id is not None:
        session.refresh(registration)


# -- the one place a state changes -----------------------------------------------------------


def _deadline(session: Session, event: Event, now: datetime) -> datetime:
    deadline = now + timedelta(days=settings_for(session, event).payment_days)
    if now < event.starts_at < deadline:
        deadline = event.starts_at
    return deadline


def external_url(endpoint: str, **values) -> str:
    """An absolute link for emails, built from BASE_URL (works outside a request too)."""
    adapter = current_app.url_map.bind("localhost")
    path = adapter.build(endpoint, values)
    return current_app.config.get("BASE_URL", "").rstrip("/") + path


def _email_payment_methods(registration: Registration) -> list[PaymentMethod]:
    """The ways to pay offered on the registration page, for the payment-pending email."""
    from flask import has_request_context

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
    if email:
        _email(session, registration, email, reason=reason)
    plugins.event_hooks(registration.event).registration_changed(
        registration=registration, old=old, new=new
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
    session.add(registration)
    _notify(
        session, registration, old, actor=actor, action=action, reason=reason, email=email, **data
    )
    return registration


def _seat_state(registration: Registration) -> RegistrationState:
    """The state a registration gets with a seat: free ones are confirmed at once."""
    return S.confirmed if registration.total_minor == 0 else S.pending_payment


def _promote(
    session: Session,
    event: Event,
    mode: AttendanceMode,
    locked: _Locked,
    now: datetime,
    actor=None,
    skip_id: int | None = None,
) -> list[Registration]:
    free = _free(session, event, mode, locked, now)
    if free is not None and free <= 0:
        return []
    stmt = (
        sa.select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.attendance_mode == mode,
            Registration.state == S.waitlisted,
        )
        .order_by(Registration.waitlisted_at, Registration.id)
        .options(joinedload(Registration.person))
        .execution_options(populate_existing=True)
    )
    if skip_id is not None:
        stmt = stmt.where(Registration.id != skip_id)
    if free is not None:
        stmt = stmt.limit(free)
    promoted = []
    for registration in session.scalars(stmt):
        _move(
            session,
            registration,
            _seat_state(registration),
            actor=actor,
            action="promoted",
            email="promoted",
            now=now,
        )
        promoted.append(registration)
    return promoted


def promote_from_waitlist(
    session: Session, event: Event, mode: AttendanceMode | str, *, actor=None, now=None
) -> list[Registration]:
    """Give the free seats of a mode to the people waiting, first come first served."""
    now = now or utcnow()
    locked = lock_event(session, event)
    return _promote(session, event, AttendanceMode(mode), locked, now, actor)


def _place(
    session: Session,
    registration: Registration,
    locked: _Locked,
    now: datetime,
    *,
    actor,
    action: str,
    reason: str = "",
    force: bool = False,
) -> Registration:
    """A new (or reopened) registration takes a seat, or joins the waiting list."""
    event = registration.event
    mode = registration.attendance_mode
    # Those already waiting come first.
    _promote(session, event, mode, locked, now, actor)
    free = _free(session, event, mode, locked, now, exclude_id=registration.id)
    if force or free is None or free > 0:
        new = _seat_state(registration)
    else:
        new = S.waitlisted
    return _move(
        session,
        registration,
        new,
        actor=actor,
        action=action,
        reason=reason,
        email=new.value,
        now=now,
        mode=mode.value,
        total_minor=registration.total_minor,
        **({"forced": True} if force and free is not None and free <= 0 else {}),
    )


def _existing(session: Session, event: Event, person: Person) -> Registration | None:
    return session.scalar(
        sa.select(Registration)
        .where(Registration.event_id == event.id, Registration.person_id == person.id)
        .execution_options(populate_existing=True)
    )


def build_registration(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    answers: dict | None = None,
    user=None,
    organiser: bool = False,
    now: datetime | None = None,
) -> Registration:
    """Validate the choices and return an unsaved registration with its price lines.

    Used for the confirmation step (nothing is stored) and by ``register``.
    Raises InvalidChoice / MembershipRequired / RegistrationError with the form field.
    """
    now = now or utcnow()
    attendance_mode = _resolve_mode(event, mode)
    category = _resolve_category(session, event, fee_category, active_only=not organiser)
    if (
        category is not None
        and category.requires_membership
        and not organiser
        and not is_member(user, event.series)
    ):
        raise MembershipRequired(field="fee_category")
    cleaned = clean_answers(registration_fields(event), answers, enforce_required=not organiser)
    registration = Registration(
        event=event,
        person=person,
        user=user if getattr(user, "is_authenticated", False) else None,
        attendance_mode=attendance_mode,
        fee_category=category,
        answers=cleaned,
    )
    _apply_prices(registration, now)
    return registration


def _check_open(event: Event, locked: _Locked, now: datetime) -> None:
    if locked.status == EventStatus.cancelled:
        raise RegistrationClosed(_l("This event has been cancelled."))
    if locked.status != EventStatus.open or event.ends_at < now:
        raise RegistrationClosed()


def _store(session: Session, draft: Registration, existing: Registration | None) -> Registration:
    """Put the draft's choices into a new row or into the person's cancelled registration."""
    if existing is None:
        return draft  # added to the session when its state is set (_move)
    # Reopening: keep the row (one per person and event), take the new choices.
    for name in (
        "user",
        "attendance_mode",
        "fee_category",
        "answers",
        "price_lines",
        "total_minor",
        "currency",
    ):
        setattr(existing, name, getattr(draft, name))
    existing.checked_in_at = None
    return existing


def register(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    answers: dict | None = None,
    user=None,
    privacy_accepted: bool = False,
    now: datetime | None = None,
) -> Registration:
    """A participant registers: confirmed (free), pending_payment (paid) or waitlisted (full).

    ``mode`` is an AttendanceMode or its value; ``fee_category`` a FeeCategory or its id (as
    typed in the form). Raises AlreadyRegistered (with ``.registration``) when the person is
    already registered, RegistrationClosed, InvalidChoice, MembershipRequired.
    """
    now = now or utcnow()
    if not privacy_accepted:
        raise RegistrationError(
            _l("Please accept the privacy notice to register."), field="privacy"
        )
    # The event lock comes first, so plugins' price_lines and registration_changed hooks run
    # under it too (one lock order for everything that touches a registration).
    locked = lock_event(session, event)
    draft = build_registration(
        session,
        event,
        person,
        mode=mode,
        fee_category=fee_category,
        answers=answers,
        user=user,
        now=now,
    )
    _check_open(event, locked, now)
    existing = _existing(session, event, person)
    if existing is not None and existing.is_active:
        raise AlreadyRegistered(existing)
    registration = _store(session, draft, existing)
    registration.privacy_accepted_at = now
    return _place(
        session,
        registration,
        locked,
        now,
        actor=user,
        action="reregistered" if existing is not None else "registered",
    )


def organiser_add(
    session: Session,
    event: Event,
    person: Person,
    *,
    mode,
    fee_category=None,
    actor,
    answers: dict | None = None,
    reason: str = "",
    force: bool = False,
    now: datetime | None = None,
) -> Registration:
    """An organiser adds a registration by hand (a speaker, a guest).

    Any fee category of the event (also inactive ones), no membership check; the event may be
    a draft or closed, not cancelled. ``force=True`` gives a seat even when the mode is full.
    """
    now = now or utcnow()
    locked = lock_event(session, event)
    draft = build_registration(
        session,
        event,
        person,
        mode=mode,
        fee_category=fee_category,
        answers=answers,
        user=person.user,
        organiser=True,
        now=now,
    )
    if locked.status == EventStatus.cancelled:
        raise RegistrationClosed(_l("This event has been cancelled."))
    existing = _existing(session, event, person)
    if existing is not None and existing.is_active:
        raise AlreadyRegistered(existing, _l("This person is already registered for this event."))
    registration = _store(session, draft, existing)
    return _place(
        session,
        registration,
        locked,
        now,
        actor=actor,
        action="added_by_organiser",
        reason=reason,
        force=force,
    )


def create_guest_person(
    session: Session,
    *,
    family_name: str = "",
    given_name: str = "",
    family_name_kana: str = "",
    given_name_kana: str = "",
    romanized_name: str = "",
    email: str | None = None,
    affiliation: str = "",
    sector: str | None = None,
    preferred_language: str = "ja",
    actor=None,
) -> Person:
    """A person without an account, added by an organiser (a speaker, a guest)."""
    if not (family_name or given_name or romanized_name):
        raise RegistrationError(_l("Please enter a name."), field="family_name")
    person = Person(
        family_name=family_name.strip(),
        given_name=given_name.strip(),
        family_name_kana=family_name_kana.strip(),
        given_name_kana=given_name_kana.strip(),
        romanized_name=romanized_name.strip(),
        email=(email or "").strip().lower() or None,
        affiliation=affiliation.strip(),
        sector=Sector(sector) if sector else None,
        preferred_language=preferred_language if preferred_language in LANGUAGES else "ja",
    )
    session.add(person)
    session.flush()
    audit.record(session, actor, "person", person.id, "created_by_organiser")
    return person


def confirm(
    session: Session,
    registration: Registration,
    *,
    actor=None,
    reason: str = "",
    action: str = "confirmed",
    now: datetime | None = None,
    **data,
) -> Registration:
    """pending_payment → confirmed (a payment arrived). The payments plugin calls this.

    If the payment deadline has passed and the seat has gone to someone else meanwhile,
    raises NoPlaceAvailable (the caller refunds). Confirming twice raises TransitionNotAllowed.
    """
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    if registration.state != S.pending_payment:
        raise TransitionNotAllowed()
    if registration.payment_deadline is not None and registration.payment_deadline <= now:
        free = _free(session, event, registration.attendance_mode, locked, now, registration.id)
        if free is not None and free <= 0:
            raise NoPlaceAvailable()
    return _move(
        session,
        registration,
        S.confirmed,
        actor=actor,
        action=action,
        reason=reason,
        email="confirmed",
        now=now,
        **data,
    )


def mark_paid(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """An organiser records a payment (bank transfer, cash): pending_payment → confirmed."""
    return confirm(session, registration, actor=actor, reason=reason, action="marked_paid", now=now)


def reprice(
    session: Session,
    registration: Registration,
    *,
    answers: dict | None = None,
    actor=None,
    reason: str = "",
    now: datetime | None = None,
) -> bool:
    """A plugin's choice changed (an answer, or a place it gives): store the new answers and
    recompute the plugins' price lines. Returns whether the price lines changed.

    ``answers`` (optional) are merged into ``registration.answers`` whatever the state. Only a
    registration not paid yet (pending payment, waiting list) is repriced; the fee category's
    line keeps the price it had when registering (an early-bird price stays). Once confirmed,
    the price lines are frozen (a plugin settles later extras itself, e.g. on the day). A
    pending payment left with nothing to pay is confirmed. Written to the history as
    ``repriced``. The caller holds the event's lock (``lock_event``) and commits.
    """
    now = now or utcnow()
    if answers:
        merged = dict(registration.answers or {})
        merged.update(answers)
        if merged != (registration.answers or {}):
            registration.answers = merged
    if registration.state not in (S.pending_payment, S.waitlisted):
        return False
    kept = [
        dict(line)
        for line in registration.price_lines or []
        if str(line.get("code", "")).startswith("fee:")
    ]
    extra = [
        {
            "code": line.code,
            "label": _label_dict(line.label),
            "amount_minor": int(line.amount_minor),
            "currency": line.currency.upper(),
        }
        for line in compute_price_lines(registration, now)
        if not line.code.startswith("fee:")
    ]
    lines = kept + extra
    if lines == (registration.price_lines or []):
        return False
    old_total = registration.total_minor
    registration.price_lines = lines
    registration.total_minor = sum(int(line["amount_minor"]) for line in lines)
    session.flush()
    audit.record(
        session,
        actor,
        "registration",
        registration.id,
        "repriced",
        old_total=old_total,
        new_total=registration.total_minor,
        reason=reason,
    )
    if registration.state == S.pending_payment and registration.total_minor == 0:
        _move(
            session,
            registration,
            S.confirmed,
            actor=actor,
            action="confirmed",
            reason=reason,
            email="confirmed",
            now=now,
        )
    return True


def waitlist(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """Move a registration holding a seat to the end of the waiting list (e.g. capacity cut)."""
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    _move(
        session,
        registration,
        S.waitlisted,
        actor=actor,
        action="waitlisted",
        reason=reason,
        email="waitlisted",
        now=now,
    )
    _promote(session, event, registration.attendance_mode, locked, now, actor, registration.id)
    return registration


def cancel(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
    action: str = "cancelled",
    email: str = "cancelled",
) -> Registration:
    """Cancel (取消); a freed seat goes to the first person waiting in that mode."""
    now = now or utcnow()
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    _move(
        session,
        registration,
        S.cancelled,
        actor=actor,
        action=action,
        reason=reason,
        email=email,
        now=now,
    )
    _promote(session, event, registration.attendance_mode, locked, now, actor)
    return registration


def check_in(
    session: Session,
    registration: Registration,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """受付: confirmed → attended. A pending payment must be marked paid first."""
    lock_event(session, registration.event)
    _refresh(session, registration)
    return _move(
        session, registration, S.attended, actor=actor, action="checked_in", reason=reason, now=now
    )


def switch_mode(
    session: Session,
    registration: Registration,
    mode,
    *,
    actor,
    reason: str = "",
    now: datetime | None = None,
) -> Registration:
    """Change between on site and online while the other mode has places.

    A registration holding a seat keeps its state; a waiting one gets a seat in the new mode
    (or the change is refused). The old mode's freed seat goes to its waiting list.
    """
    now = now or utcnow()
    event = registration.event
    new_mode = _resolve_mode(event, mode if mode else "-")
    locked = lock_event(session, event)
    _refresh(session, registration)
    old_mode = registration.attendance_mode
    if registration.state not in (S.pending_payment, S.confirmed, S.waitlisted):
        raise TransitionNotAllowed()
    if new_mode == old_mode:
        raise InvalidChoice(
            _l("You are already registered for this attendance mode."), field="attendance_mode"
        )
    _promote(session, event, new_mode, locked, now, actor)
    free = _free(session, event, new_mode, locked, now, exclude_id=registration.id)
    if free is not None and free <= 0:
        raise NoPlaceAvailable(field="attendance_mode")
    registration.attendance_mode = new_mode
    data = {"old_mode": old_mode.value, "new_mode": new_mode.value}
    if registration.state == S.waitlisted:
        _move(
            session,
            registration,
            _seat_state(registration),
            actor=actor,
            action="mode_switched",
            reason=reason,
            email="mode_switched",
            now=now,
            **data,
        )
    else:
        old = registration.state
        session.add(registration)
        _notify(
            session,
            registration,
            old,
            actor=actor,
            action="mode_switched",
            reason=reason,
            email="mode_switched",
            **data,
        )
    _promote(session, event, old_mode, locked, now, actor)
    return registration


def expire_unpaid(session: Session, *, now: datetime | None = None, actor=None) -> list:
    """Cancel pending payments whose deadline passed; their seats go to the waiting lists."""
    now = now or utcnow()
    overdue = sa.and_(
        Registration.state == S.pending_payment,
        Registration.payment_deadline.is_not(None),
        Registration.payment_deadline <= now,
    )
    event_ids = list(session.scalars(sa.select(Registration.event_id).where(overdue).distinct()))
    expired: list[Registration] = []
    for event_id in sorted(event_ids):
        event = session.get(Event, event_id)
        locked = lock_event(session, event)
        rows = session.scalars(
            sa.select(Registration)
            .where(Registration.event_id == event_id, overdue)
            .order_by(Registration.id)
            .execution_options(populate_existing=True)
        ).all()
        for registration in rows:
            _move(
                session,
                registration,
                S.cancelled,
                actor=actor,
                action="expired",
                reason="payment deadline passed",
                email="expired",
                now=now,
            )
            expired.append(registration)
        for mode in event.attendance_modes:
            _promote(session, event, mode, locked, now, actor)
    return expired


def change_state_by_organiser(
    session: Session,
    registration: Registration,
    new_state,
    *,
    actor,
    reason: str,
    force: bool = False,
    now: datetime | None = None,
) -> Registration:
    """An organiser moves a registration to another state, with a reason (kept in history).

    Moves into a seat (confirmed, pending_payment) respect capacity unless ``force``.
    """
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise RegistrationError(_l("Please give a reason for this change."), field="reason")
    try:
        new = RegistrationState(str(new_state))
    except ValueError:
        raise InvalidChoice(field="state") from None
    old = registration.state
    if new == old:
        raise InvalidChoice(_l("The registration is already in this state."), field="state")
    if new == S.cancelled:
        return cancel(session, registration, actor=actor, reason=reason, now=now)
    if new == S.waitlisted:
        return waitlist(session, registration, actor=actor, reason=reason, now=now)
    if new == S.attended:
        if old != S.confirmed:
            raise TransitionNotAllowed(field="state")
        return check_in(session, registration, actor=actor, reason=reason, now=now)
    if new == S.confirmed and old == S.pending_payment:
        return mark_paid(session, registration, actor=actor, reason=reason, now=now)
    if new == S.confirmed and old == S.attended:
        _refresh(session, registration)
        return _move(
            session,
            registration,
            S.confirmed,
            actor=actor,
            action="check_in_undone",
            reason=reason,
            now=now,
        )
    # A move into a seat: from the waiting list or from cancelled.
    event = registration.event
    locked = lock_event(session, event)
    _refresh(session, registration)
    if new not in ALLOWED_MOVES.get(registration.state, set()):
        raise TransitionNotAllowed(field="state")
    if registration.state == S.cancelled:
        _promote(session, event, registration.attendance_mode, locked, now, actor)
    free = _free(session, event, registration.attendance_mode, locked, now, registration.id)
    if not force and free is not None and free <= 0:
        raise NoPlaceAvailable(field="state")
    return _move(
        session,
        registration,
        new,
        actor=actor,
        action="state_changed_by_organiser",
        reason=reason,
        email=new.value,
        now=now,
        **({"forced": True} if free is not None and free <= 0 else {}),
    )


# -- queries ---------------------------------------------------------------------------------


def waitlist_positions(session: Session, registrations) -> dict[int, int]:
    """Waiting-list positions (1 = next) of the given registrations, in one query."""
    waiting = [r for r in registrations if r.state == S.waitlisted and r.id is not None]
    if not waiting:
        return {}
    position = (
        sa.func.row_number()
        .over(
            partition_by=(Registration.event_id, Registration.attendance_mode),
            order_by=(Registration.waitlisted_at, Registration.id),
        )
        .label("position")
    )
    queue = (
        sa.select(Registration.id, position)
        .where(
            Registration.event_id.in_({r.event_id for r in waiting}),
            Registration.state == S.waitlisted,
        )
        .subquery()
    )
    rows = session.execute(
        sa.select(queue.c.id, queue.c.position).where(queue.c.id.in_([r.id for r in waiting]))
    )
    return {rid: pos for rid, pos in rows}


def waitlist_position(session: Session, registration: Registration) -> int | None:
    return waitlist_positions(session, [registration]).get(registration.id)


def my_registration(session: Session, event: Event, user) -> Registration | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return session.scalar(
        sa.select(Registration).where(
            Registration.event_id == event.id, Registration.person_id == user.person_id
        )
    )


def my_registrations(user) -> sa.Select:
    """The user's registrations, newest event first (for pagination)."""
    return (
        sa.select(Registration)
        .join(Event, Registration.event_id == Event.id)
        .where(Registration.person_id == user.person_id)
        .options(
            joinedload(Registration.event).joinedload(Event.series),
            joinedload(Registration.fee_category),
        )
        .order_by(Event.starts_at.desc(), Registration.id)
    )


def get_for_person(session: Session, reg_id: int, user) -> Registration | None:
    """The user's own registration, or None (other people's registrations are not found)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return session.scalar(
        sa.select(Registration)
        .where(Registration.id == reg_id, Registration.person_id == user.person_id)
        .options(
            joinedload(Registration.event).joinedload(Event.series),
            joinedload(Registration.fee_category),
            joinedload(Registration.person),
        )
    )


def person_search(q: str):
    """A condition: every word of ``q`` is in the person's folded search key (name in either
    script, kana, romaji, romanised name, email; kana and full/half width alike)."""
    from portal.accounts.search import person_matches

    return person_matches(q)


def organiser_list(
    event: Event,
    *,
    state: str = "",
    mode: str = "",
    fee_category_id: str | int = "",
    sector: str = "",
    q: str = "",
) -> sa.Select:
    """Registrations of an event for the organiser, filtered; person and category eager-loaded."""
    stmt = (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id)
        .options(
            joinedload(Registration.person),
            joinedload(Registration.fee_category),
        )
    )
    if state in {s.value for s in RegistrationState}:
        stmt = stmt.where(Registration.state == RegistrationState(state))
    if mode in {m.value for m in AttendanceMode}:
        stmt = stmt.where(Registration.attendance_mode == AttendanceMode(mode))
    if str(fee_category_id).isdigit():
        stmt = stmt.where(Registration.fee_category_id == int(fee_category_id))
    if sector in {s.value for s in Sector}:
        stmt = stmt.where(Person.sector == Sector(sector))
    if q and q.strip():
        stmt = stmt.where(person_search(q))
    return stmt.order_by(Registration.created_at, Registration.id)


def roster(event: Event, mode: AttendanceMode | None = AttendanceMode.onsite) -> sa.Select:
    """Everyone expected or present, by kana/romanised name: the printable reception (受付)
    list, on-site participants only (online ones are on the webinar's list); ``mode=None``
    gives both."""
    conditions = [
        Registration.event_id == event.id,
        Registration.state.in_((S.confirmed, S.attended, S.pending_payment)),
    ]
    if mode is not None:
        conditions.append(Registration.attendance_mode == mode)
    return (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(*conditions)
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
        .order_by(
            Person.family_name_kana,
            Person.given_name_kana,
            Person.romanized_name,
            Registration.id,
        )
    )


def get_for_event(session: Session, event: Event, reg_id: int) -> Registration | None:
    return session.scalar(
        sa.select(Registration)
        .where(Registration.id == reg_id, Registration.event_id == event.id)
        .options(joinedload(Registration.person), joinedload(Registration.fee_category))
    )


def history(session: Session, registration: Registration) -> list:
    """The registration's history: audit entries with their actors, oldest first."""
    from portal.accounts.models import User
    from portal.audit import AuditEntry

    return list(
        session.execute(
            sa.select(AuditEntry, User)
            .outerjoin(User, AuditEntry.actor_id == User.id)
            .where(
                AuditEntry.subject_type == "registration",
                AuditEntry.subject_id == registration.id,
            )
            .order_by(AuditEntry.at, AuditEntry.id)
        ).all()
    )


_ANY = object()


@dataclass
class RegistrationCounts:
    """Counts by (state, mode, sector) from one grouped query; ``get`` adds them up.

    Leave out an argument to count all of it; ``sector=None`` counts people without a sector.
    """

    rows: list = field(default_factory=list)

    def get(self, state=_ANY, mode=_ANY, sector=_ANY) -> int:
        return sum(
            n
            for s, m, sec, n in self.rows
            if (state is _ANY or s == state)
            and (mode is _ANY or m == mode)
            and (sector is _ANY or sec == sector)
        )

    @property
    def sectors(self) -> list:
        present = {sec for _s, _m, sec, _n in self.rows}
        ordered = [s for s in Sector if s in present]
        return ordered + ([None] if None in present else [])


def registration_counts(session: Session, event: Event) -> RegistrationCounts:
    """Registrations of the event by state, attendance mode and sector: one grouped query."""
    rows = session.execute(
        sa.select(Registration.state, Registration.attendance_mode, Person.sector, sa.func.count())
        .join(Person, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id)
        .group_by(Registration.state, Registration.attendance_mode, Person.sector)
    ).all()
    return RegistrationCounts(rows=[tuple(r) for r in rows])


# -- fee categories --------------------------------------------------------------------------


def save_fee_category(
    session: Session,
    event: Event,
    *,
    actor,
    category: FeeCategory | None = None,
    code: str,
    name: BilingualText,
    price_minor: int,
    early_bird_price_minor: int | None = None,
    early_bird_until: datetime | None = None,
    requires_membership: bool = False,
    position: int = 0,
) -> FeeCategory:
    """Create or edit a fee category of the event (prices in minor units)."""
    code = (code or "").strip()
    duplicate = session.scalar(
        sa.select(FeeCategory.id).where(
            FeeCategory.event_id == event.id,
            FeeCategory.code == code,
            FeeCategory.id != (category.id if category is not None else -1),
        )
    )
    if duplicate is not None:
        raise RegistrationError(_l("This code is already used for this event."), field="code")
    if price_minor < 0 or (early_bird_price_minor is not None and early_bird_price_minor < 0):
        raise RegistrationError(_l("Prices cannot be negative."), field="price")
    if (early_bird_price_minor is None) != (early_bird_until is None):
        raise RegistrationError(
            _l("Give both the early-bird price and its last date, or neither."),
            field="early_bird_until",
        )
    created = category is None
    if created:
        category = FeeCategory(event_id=event.id, is_active=True)
        session.add(category)
    elif category.event_id != event.id:
        raise InvalidChoice(field="code")
    category.code = code
    category.name = name
    category.price_minor = price_minor
    category.early_bird_price_minor = early_bird_price_minor
    category.early_bird_until = early_bird_until
    category.requires_membership = requires_membership
    category.position = position
    session.flush()
    audit.record(
        session,
        actor,
        "fee_category",
        category.id,
        "created" if created else "edited",
        event_id=event.id,
        code=code,
        price_minor=price_minor,
        early_bird_price_minor=early_bird_price_minor,
    )
    return category


def set_fee_category_active(
    session: Session, category: FeeCategory, active: bool, *, actor
) -> FeeCategory:
    """Deactivate (or reactivate) a fee category; existing registrations keep it."""
    if category.is_active == active:
        return category
    category.is_active = active
    session.flush()
    audit.record(
        session, actor, "fee_category", category.id, "activated" if active else "deactivated"
    )
    return category
