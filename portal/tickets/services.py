"""Tickets (参加証), check-in on the day, and the queries behind the scanner and the badges.

- ``issue_ticket`` gives a confirmed registration its ticket (a random token, never the
  registration id); ``ensure_ticket`` is called by the registration services whenever a
  registration is confirmed, so every confirmed registration has one. ``revoke_ticket``
  invalidates the token and issues a new one.
- ``check_in`` is the one function that lets somebody in, at the meeting (``point="event"``)
  or at the exchange meeting (``point="reception"``). The organiser's list check-in, the
  scanner and the typed search all call it. It serialises on the event row
  (``registration.services.lock_event``), so two phones scanning the same ticket at once count
  it once: the second answers amber ("already checked in at 14:02 by …").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, joinedload

from portal import audit, plugins
from portal.accounts.models import Person, User
from portal.db import insert_now, utcnow
from portal.events.models import AttendanceMode, Event
from portal.i18n import format_person_name, format_time
from portal.mail.services import attachment_generator
from portal.registration.models import Registration, RegistrationState
from portal.text import compact
from portal.tickets.models import CheckIn, Ticket

S = RegistrationState
EVENT = "event"
RECEPTION = "reception"
POINTS = (EVENT, RECEPTION)
TICKET_STATES = (S.confirmed, S.attended)
EXCHANGE_MEETING = "exchange_meeting"


# -- tickets ---------------------------------------------------------------------------------


def new_token() -> str:
    """192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


QR_FILENAME = "ticket-qr.png"  # attached to the confirmation email, shown by its HTML


def current_ticket(session: Session, registration: Registration) -> Ticket | None:
    return session.scalar(
        sa.select(Ticket)
        .where(Ticket.registration_id == registration.id, Ticket.revoked_at.is_(None))
        .order_by(Ticket.id.desc())
        .limit(1)
    )


def issue_ticket(session: Session, registration: Registration, *, actor=None) -> Ticket:
    """A new valid ticket for the registration (does not revoke an existing one); written at
    once with a plain INSERT (``db.insert_now``: it happens under the event's lock)."""
    ticket = Ticket(registration_id=registration.id, token=new_token())
    insert_now(session, ticket)
    return ticket


def ensure_ticket(
    session: Session, registration: Registration, *, actor=None, new: bool = False
) -> Ticket | None:
    """The registration's valid ticket, issued now if a confirmed registration has none.
    ``new``: the registration was created in this transaction, so it has no ticket yet."""
    if registration.id is None or registration.state not in TICKET_STATES:
        return None
    if not new:
        ticket = current_ticket(session, registration)
        if ticket is not None:
            return ticket
    return issue_ticket(session, registration, actor=actor)


def revoke_ticket(session: Session, registration: Registration, *, actor) -> Ticket | None:
    """Invalidate the registration's ticket (lost, forwarded) and issue a new one if it may
    have one. Scans of the old token answer red ("revoked")."""
    now = utcnow()
    for ticket in session.scalars(
        sa.select(Ticket).where(
            Ticket.registration_id == registration.id, Ticket.revoked_at.is_(None)
        )
    ):
        ticket.revoked_at = now
    session.flush()
    audit.record(session, actor, "registration", registration.id, "ticket_revoked")
    if registration.state in TICKET_STATES:
        return issue_ticket(session, registration, actor=actor)
    return None


def ticket_email_parts(
    session: Session,
    registration: Registration,
    template: str,
    lang: str,
    ticket: Ticket | None = None,
):
    """For a confirmation email: the ticket (for the template) and the ticket PDF and QR PNG
    attached (``ticket``: the registration's valid ticket, if the caller has it). The attachments are references the outbox sender renders when it sends the mail
    (``ticket_pdf_attachment``), so a registration does not draw them while it holds the event
    lock (docs/performance.md)."""
    if template not in ("confirmed", "promoted") or registration.state not in TICKET_STATES:
        return {}
    ticket = ticket or ensure_ticket(session, registration)
    from portal.mail.services import Generated

    name = "ticket"
    pdf_args = {"registration_id": registration.id, "token": ticket.token, "language": lang}
    return {
        "ticket": ticket,
        # The HTML shows the QR code as the PNG attached (``cid:``): mail programs show an
        # attached image where many do not draw inline SVG, and the request encodes nothing.
        "ticket_qr_file": QR_FILENAME,
        "attachments": [
            (
                f"{name}-{registration.event.slug}.pdf",
                "application/pdf",
                Generated("ticket_pdf", pdf_args),
            ),
            (QR_FILENAME, "image/png", Generated("ticket_qr_png", {"token": ticket.token})),
        ],
    }


@attachment_generator("ticket_pdf")
def ticket_pdf_attachment(session: Session, registration_id: int, token: str, language: str):
    from portal.tickets.pdf import ticket_pdf

    registration = session.get(Registration, registration_id)
    if registration is None:
        raise LookupError(f"registration {registration_id} is gone")
    return ticket_pdf(registration, token, language, has_reception_place(session, registration))


@attachment_generator("ticket_qr_png")
def ticket_qr_png_attachment(session: Session, token: str) -> bytes:
    from portal.tickets.pdf import qr_png

    return qr_png(token)


def tickets_for(session: Session, registrations) -> dict[int, Ticket]:
    """Valid tickets of many registrations in one query, by registration id."""
    ids = [r.id for r in registrations if r.state in TICKET_STATES]
    if not ids:
        return {}
    rows = session.scalars(
        sa.select(Ticket)
        .where(Ticket.registration_id.in_(ids), Ticket.revoked_at.is_(None))
        .order_by(Ticket.id)
    )
    return {t.registration_id: t for t in rows}


def find_ticket(session: Session, token: str) -> Ticket | None:
    token = (token or "").strip()
    # A QR code may carry a link: the token is its last path segment.
    token = token.rstrip("/").rsplit("/", 1)[-1]
    if not token or len(token) > 64:
        return None
    return session.scalar(
        sa.select(Ticket)
        .where(Ticket.token == token)
        .options(
            joinedload(Ticket.registration).joinedload(Registration.person),
            joinedload(Ticket.registration).joinedload(Registration.event),
        )
    )


# -- the exchange meeting (意見交換会), when its plugin is on -------------------------------


def reception_enabled(event: Event) -> bool:
    return plugins.is_enabled(event, EXCHANGE_MEETING)


def reception_places(session: Session, registrations) -> dict[int, bool]:
    """Whether each registration has a place at the exchange meeting (one query, through the
    plugin's ``reception_places`` hook; all False when no plugin keeps a reception)."""
    ids = [r.id for r in registrations]
    if not ids:
        return {}
    event = registrations[0].event
    found = plugins.event_hooks(event).reception_places(event=event, registration_ids=ids) or {}
    return {rid: bool(found.get(rid)) for rid in ids}


def has_reception_place(session: Session, registration: Registration) -> bool | None:
    """True/False when the event has an exchange meeting; None when it has none."""
    if not reception_enabled(registration.event):
        return None
    return reception_places(session, [registration]).get(registration.id, False)


# -- check-in --------------------------------------------------------------------------------

GREEN, AMBER, RED = "green", "amber", "red"


@dataclass
class ScanResult:
    """What the scanner shows: a colour, a short headline and details."""

    colour: str
    code: str
    message: str
    registration: Registration | None = None
    detail: str = ""
    at: datetime | None = None
    by: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.colour == GREEN

    def as_json(self, event: Event) -> dict:
        person = self.registration.person if self.registration is not None else None
        return {
            "colour": self.colour,
            "code": self.code,
            "message": self.message,
            "detail": self.detail,
            "name": format_person_name(person) if person is not None else "",
            "affiliation": person.affiliation if person is not None else "",
            "registration_id": self.registration.id if self.registration is not None else None,
            "at": format_time(self.at, event.timezone) if self.at else "",
            "by": self.by,
        }


def _checkin_row(session: Session, registration: Registration, point: str) -> CheckIn | None:
    return session.scalar(
        sa.select(CheckIn)
        .where(CheckIn.registration_id == registration.id, CheckIn.point == point)
        .options(joinedload(CheckIn.checked_in_by))
    )


def _who(row: CheckIn | None) -> str:
    user = row.checked_in_by if row is not None else None
    if user is None:
        return ""
    return format_person_name(user.person) or user.email


def _already(event: Event, registration, row: CheckIn | None, at, point: str) -> ScanResult:
    by = _who(row)
    at_text = format_time(at, event.timezone) if at else ""
    if by:
        detail = _("Already checked in at %(time)s by %(name)s.", time=at_text, name=by)
    else:
        detail = _("Already checked in at %(time)s.", time=at_text)
    message = _("Already at the reception") if point == RECEPTION else _("Already checked in")
    return ScanResult(AMBER, "already", message, registration, detail, at, by)


def _refused(registration: Registration, event: Event, point: str) -> ScanResult | None:
    """Red answers: why this registration may not come in here."""
    if registration.event_id != event.id:
        other = registration.event.title.get(None, registration.event.series.default_language)
        return ScanResult(
            RED,
            "wrong_event",
            _("Wrong event"),
            registration,
            _("This ticket is for %(event)s.", event=other),
        )
    state = registration.state
    if state == S.cancelled:
        return ScanResult(RED, "cancelled", _("Registration cancelled"), registration)
    if state == S.waitlisted:
        return ScanResult(RED, "waitlisted", _("On the waiting list"), registration)
    if state == S.pending_payment:
        return ScanResult(
            RED,
            "unpaid",
            _("Not paid"),
            registration,
            _("The payment has not arrived: send the person to the registration desk."),
        )
    if point == EVENT and registration.attendance_mode == AttendanceMode.online:
        return ScanResult(
            RED,
            "online_only",
            _("Registered to attend online"),
            registration,
            _("Change the attendance mode at the registration desk first."),
        )
    return None


def check_in(
    session: Session,
    event: Event,
    registration: Registration,
    *,
    actor,
    point: str = EVENT,
    now: datetime | None = None,
) -> ScanResult:
    """Let the person in at ``point`` (the one check-in state change); never raises for a
    refused person, it answers red or amber instead. Does not commit."""
    from portal.registration import services as registrations

    now = now or utcnow()
    if point not in POINTS:
        point = EVENT
    if point == RECEPTION and not reception_enabled(event):
        return ScanResult(RED, "no_reception", _("This event has no exchange meeting."))
    # One lock order for everything that touches a registration: the event row first.
    registrations.lock_event(session, event)
    if registration.id is not None:
        session.refresh(registration)
    refused = _refused(registration, event, point)
    if refused is not None:
        return refused
    row = _checkin_row(session, registration, point)
    if point == EVENT:
        if registration.state == S.attended:
            return _already(event, registration, row, registration.checked_in_at, point)
        registrations.check_in(session, registration, actor=actor, now=now)
        at = registration.checked_in_at or now
    else:
        if not has_reception_place(session, registration):
            return ScanResult(
                RED,
                "no_reception_place",
                _("No place at the exchange meeting"),
                registration,
            )
        if row is not None:
            return _already(event, registration, row, row.checked_in_at, point)
        at = now
        audit.record(session, actor, "registration", registration.id, "reception_checked_in")
    actor_id = actor.id if isinstance(actor, User) else None
    if row is None:
        row = CheckIn(registration_id=registration.id, event_id=event.id, point=point)
        session.add(row)
    row.checked_in_at = at
    row.checked_in_by_id = actor_id
    session.flush()
    message = _("Welcome to the exchange meeting") if point == RECEPTION else _("Checked in")
    by = format_person_name(actor.person) if isinstance(actor, User) else ""
    return ScanResult(GREEN, "checked_in", message, registration, "", at, by)


def scan(session: Session, event: Event, token: str, *, actor, point: str = EVENT) -> ScanResult:
    """A scanned QR code: find its ticket, then ``check_in``."""
    ticket = find_ticket(session, token)
    if ticket is None:
        return ScanResult(
            RED, "unknown", _("Unknown ticket"), None, _("This QR code is not a ticket.")
        )
    if not ticket.is_valid:
        return ScanResult(
            RED,
            "revoked",
            _("Ticket revoked"),
            ticket.registration,
            _("A newer ticket was issued for this registration."),
        )
    return check_in(session, event, ticket.registration, actor=actor, point=point)


def checked_in_at_point(session: Session, registrations, point: str) -> set[int]:
    """Ids of the registrations already checked in at ``point`` (one query at most)."""
    if point == EVENT:
        return {r.id for r in registrations if r.state == S.attended}
    ids = [r.id for r in registrations]
    if not ids:
        return set()
    return set(
        session.scalars(
            sa.select(CheckIn.registration_id).where(
                CheckIn.registration_id.in_(ids), CheckIn.point == point
            )
        )
    )


# -- typed search, kana-insensitive ----------------------------------------------------------


_fold = compact  # fold (NFKC, lower case, katakana → hiragana, no accents), no spaces


def _keys(person: Person) -> str:
    return " ".join(
        _fold(part)
        for part in (
            person.family_name + person.given_name,
            person.family_name_kana + person.given_name_kana,
            person.romanized_name,
            " ".join(reversed((person.romanized_name or "").split())),
            person.email or "",
            person.affiliation,
        )
    )


def search(session: Session, event: Event, query: str, limit: int = 20) -> list[Registration]:
    """Registrations of the event whose person matches every word of ``query``: kanji, kana
    (hiragana and katakana alike, full or half width), romanised name or email."""
    terms = [_fold(t) for t in (query or "").split()][:6]
    terms = [t for t in terms if t]
    if not terms:
        return []
    rows = session.scalars(
        sa.select(Registration)
        .where(Registration.event_id == event.id, Registration.state != S.cancelled)
        .options(joinedload(Registration.person))
        .order_by(Registration.id)
    ).unique()
    found = []
    for registration in rows:
        keys = _keys(registration.person)
        if all(t in keys for t in terms):
            found.append(registration)
            if len(found) >= limit:
                break
    return found


# -- live counts -----------------------------------------------------------------------------


@dataclass
class CheckInCounts:
    """Checked in / expected per attendance mode, and at the exchange meeting."""

    checked_in: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    reception_checked_in: int | None = None
    reception_expected: int | None = None

    def as_json(self) -> dict:
        return {
            "checked_in": {str(k): v for k, v in self.checked_in.items()},
            "expected": {str(k): v for k, v in self.expected.items()},
            "reception_checked_in": self.reception_checked_in,
            "reception_expected": self.reception_expected,
        }


def checkin_counts(session: Session, event: Event) -> CheckInCounts:
    """Checked in (attended) and expected (confirmed + attended + awaiting payment) per mode;
    the exchange meeting's own figures when its plugin is on. Two or three small queries."""
    rows = session.execute(
        sa.select(Registration.attendance_mode, Registration.state, sa.func.count())
        .where(
            Registration.event_id == event.id,
            Registration.state.in_((S.confirmed, S.attended, S.pending_payment)),
        )
        .group_by(Registration.attendance_mode, Registration.state)
    ).all()
    counts = CheckInCounts()
    for mode in event.attendance_modes:
        counts.checked_in[mode.value] = 0
        counts.expected[mode.value] = 0
    for mode, state, n in rows:
        key = AttendanceMode(mode).value
        counts.expected[key] = counts.expected.get(key, 0) + n
        if state == S.attended:
            counts.checked_in[key] = counts.checked_in.get(key, 0) + n
    if reception_enabled(event):
        places = plugins.event_hooks(event).reception_places(event=event, registration_ids=None)
        counts.reception_expected = len(places or {})
        counts.reception_checked_in = session.scalar(
            sa.select(sa.func.count())
            .select_from(CheckIn)
            .where(CheckIn.event_id == event.id, CheckIn.point == RECEPTION)
        )
    return counts


# -- badges ----------------------------------------------------------------------------------


def badge_rows(session: Session, event: Event, ids: list[int] | None = None) -> list:
    """On-site participants expected or present (or the chosen ones), by kana/romanised name."""
    stmt = (
        sa.select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            Registration.event_id == event.id,
            Registration.state.in_((S.confirmed, S.attended, S.pending_payment)),
            Registration.attendance_mode == AttendanceMode.onsite,
        )
        .options(joinedload(Registration.person), joinedload(Registration.user))
        .order_by(
            Person.family_name_kana, Person.given_name_kana, Person.romanized_name, Registration.id
        )
    )
    if ids is not None:
        stmt = stmt.where(Registration.id.in_(ids))
    return list(session.scalars(stmt).unique())


def badge_roles(session: Session, event: Event, registrations) -> dict[int, str]:
    """``speaker``, ``organiser`` or ``member`` (or "") per registration id, in two queries."""
    from portal.accounts.models import Role, UserRole
    from portal.events.models import Talk

    person_ids = {r.person_id for r in registrations}
    speakers = set(
        session.scalars(
            sa.select(Talk.speaker_id).where(
                Talk.event_id == event.id, Talk.speaker_id.in_(person_ids)
            )
        )
    )
    user_ids = {r.user_id for r in registrations if r.user_id}
    roles: dict[int, set] = {}
    if user_ids:
        for user_id, role, series_id in session.execute(
            sa.select(UserRole.user_id, UserRole.role, UserRole.series_id).where(
                UserRole.user_id.in_(user_ids)
            )
        ):
            if series_id in (None, event.series_id):
                roles.setdefault(user_id, set()).add(Role(role))
    out = {}
    for r in registrations:
        mine = roles.get(r.user_id, set())
        if r.person_id in speakers:
            out[r.id] = "speaker"
        elif Role.organiser in mine:
            out[r.id] = "organiser"
        elif Role.member in mine:
            out[r.id] = "member"
        else:
            out[r.id] = ""
    return out
